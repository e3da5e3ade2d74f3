//! `eyfsp` (extracts.md §6): per-pupil EYFS Profile results, 2021 framework.
//!
//! The good level of development (GLD) is **derived here from the early learning goals**
//! marked `in_gld` in `reference/eyfsp_elgs.csv` (all at `expected`), never read from the
//! extract: a supplied GLD column is not a canonical field and is ignored. A pupil with a
//! blank ELG is loaded with `complete = false` and `gld` null (W007), so EYFSP measures
//! leave them out.

use chrono::NaiveDate;

use super::{ColType, Field, KindState, Req, RowCheck, TableBuilder, field, pii};
use crate::rules::Rule;

/// The 17 ELG columns of the 2021 framework, in column order.
pub const ELGS: &[&str] = &[
    "elg_listening_attention_understanding",
    "elg_speaking",
    "elg_self_regulation",
    "elg_managing_self",
    "elg_building_relationships",
    "elg_gross_motor",
    "elg_fine_motor",
    "elg_comprehension",
    "elg_word_reading",
    "elg_writing",
    "elg_number",
    "elg_numerical_patterns",
    "elg_past_and_present",
    "elg_people_culture_communities",
    "elg_natural_world",
    "elg_creating_with_materials",
    "elg_being_imaginative_expressive",
];

/// Canonical input fields.
pub const FIELDS: &[Field] = &[
    pii("upn", Req::Yes),
    pii("given_name", Req::No),
    pii("family_name", Req::No),
    field("date_of_birth", Req::Yes),
    pii("postcode", Req::Yes),
    field("fsm_eligible", Req::Yes),
    field("academic_year", Req::Cond),
    field("elg_listening_attention_understanding", Req::No),
    field("elg_speaking", Req::No),
    field("elg_self_regulation", Req::No),
    field("elg_managing_self", Req::No),
    field("elg_building_relationships", Req::No),
    field("elg_gross_motor", Req::No),
    field("elg_fine_motor", Req::No),
    field("elg_comprehension", Req::No),
    field("elg_word_reading", Req::No),
    field("elg_writing", Req::No),
    field("elg_number", Req::No),
    field("elg_numerical_patterns", Req::No),
    field("elg_past_and_present", Req::No),
    field("elg_people_culture_communities", Req::No),
    field("elg_natural_world", Req::No),
    field("elg_creating_with_materials", Req::No),
    field("elg_being_imaginative_expressive", Req::No),
];

/// Curated columns.
pub const COLUMNS: &[(&str, ColType)] = &[
    ("key_upn", ColType::Str),
    ("key_demo", ColType::Str),
    ("key_demo_name", ColType::Str),
    ("date_of_birth", ColType::Date),
    ("lsoa11", ColType::Str),
    ("lsoa21", ColType::Str),
    ("postcode_district", ColType::Str),
    ("fsm_eligible", ColType::Bool),
    ("academic_year", ColType::Str),
    ("elg_listening_attention_understanding", ColType::Str),
    ("elg_speaking", ColType::Str),
    ("elg_self_regulation", ColType::Str),
    ("elg_managing_self", ColType::Str),
    ("elg_building_relationships", ColType::Str),
    ("elg_gross_motor", ColType::Str),
    ("elg_fine_motor", ColType::Str),
    ("elg_comprehension", ColType::Str),
    ("elg_word_reading", ColType::Str),
    ("elg_writing", ColType::Str),
    ("elg_number", ColType::Str),
    ("elg_numerical_patterns", ColType::Str),
    ("elg_past_and_present", ColType::Str),
    ("elg_people_culture_communities", ColType::Str),
    ("elg_natural_world", ColType::Str),
    ("elg_creating_with_materials", ColType::Str),
    ("elg_being_imaginative_expressive", ColType::Str),
    ("complete", ColType::Bool),
    ("gld", ColType::Bool),
];

/// The first year of an academic year `YYYY/YY` whose second part is the next year.
pub fn academic_year_start(v: &str) -> Option<i32> {
    let (a, b) = v.split_once('/')?;
    let (first, second): (i32, i32) = (a.parse().ok()?, b.parse().ok()?);
    (a.len() == 4 && b.len() == 2 && (first + 1) % 100 == second).then_some(first)
}

/// The Reception cohort of the academic year starting in `start`: born 1 September five
/// years before to 31 August four years before.
pub fn reception_cohort(start: i32) -> (NaiveDate, NaiveDate) {
    (
        NaiveDate::from_ymd_opt(start - 5, 9, 1).expect("valid date"),
        NaiveDate::from_ymd_opt(start - 4, 8, 31).expect("valid date"),
    )
}

pub(super) fn row(r: &mut RowCheck<'_>, out: &mut TableBuilder, st: &mut KindState) -> bool {
    let key_upn = r.upn_key("upn", true);
    let dob = r.date("date_of_birth", true);
    let dob = r.not_future("date_of_birth", dob);
    let postcode = r.postcode("postcode", true, None);
    let fsm = r.boolean("fsm_eligible", true);
    let year = r.required("academic_year");
    let start = year.and_then(|y| {
        let s = academic_year_start(y);
        if s.is_none() {
            r.issue(
                "academic_year",
                Rule::E015,
                format!(
                    "academic_year {y:?} is not YYYY/YY with consecutive years (e.g. 2023/24)."
                ),
            );
        }
        s
    });
    if let (Some(k), Some(y)) = (&key_upn, year) {
        r.unique(
            &mut st.seen,
            "upn",
            &format!("{k}|{y}"),
            "(upn, academic_year)",
        );
    }
    if let (Some(d), Some(s)) = (dob, start) {
        let (from, to) = reception_cohort(s);
        if d < from || d > to {
            r.issue("date_of_birth", Rule::W016, format!("Date of birth {d} is outside the Reception cohort of {} (born {from} to {to}); loaded, check the academic year.", year.unwrap_or_default()));
        }
    }
    let mut judgements: Vec<Option<&str>> = Vec::with_capacity(ELGS.len());
    let mut blanks = Vec::new();
    for elg in ELGS {
        match r.get(elg).map(str::to_ascii_lowercase).as_deref() {
            None => {
                blanks.push(*elg);
                judgements.push(None);
            }
            Some("expected") => judgements.push(Some("expected")),
            Some("emerging") => judgements.push(Some("emerging")),
            Some(_) => {
                r.issue(elg, Rule::E004, format!("{elg} must be `expected` or `emerging` (2021 framework); map other values under [source.values.{elg}]."));
                judgements.push(None);
            }
        }
    }
    if !r.ok() {
        return false;
    }
    let complete = blanks.is_empty();
    if !complete {
        r.issue(
            "",
            Rule::W007,
            format!(
                "EYFSP incomplete: {} blank ({}); the pupil is left out of EYFSP measures.",
                blanks.len(),
                blanks.join(", ")
            ),
        );
    }
    // GLD from the shipped ELG table: every in-GLD goal at `expected`.
    let gld = complete.then(|| {
        ELGS.iter()
            .zip(&judgements)
            .filter(|(elg, _)| r.ctx.has_code("eyfsp_gld", elg))
            .all(|(_, j)| *j == Some("expected"))
    });
    let key_demo = r.demo_key(r.get("family_name"), dob, postcode.as_ref());
    let key_demo_name = r.demo_name_key(r.get("family_name"), r.get("given_name"), dob);
    let pc = postcode.as_ref();
    out.str(key_upn.as_deref())
        .str(key_demo.as_deref())
        .str(key_demo_name.as_deref())
        .date(dob)
        .str(pc.and_then(|p| p.lsoa11.as_deref()))
        .str(pc.and_then(|p| p.lsoa21.as_deref()))
        .str(pc.map(|p| p.outward.as_str()))
        .bool(fsm)
        .str(year);
    for j in &judgements {
        out.str(*j);
    }
    out.bool(Some(complete)).bool(gld);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn academic_years_and_cohorts() {
        assert_eq!(academic_year_start("2023/24"), Some(2023));
        assert_eq!(academic_year_start("1999/00"), Some(1999));
        assert_eq!(academic_year_start("2023/25"), None);
        assert_eq!(academic_year_start("2023-24"), None);
        let (from, to) = reception_cohort(2023);
        assert_eq!(
            (from.to_string(), to.to_string()),
            ("2018-09-01".into(), "2019-08-31".into())
        );
    }
}
