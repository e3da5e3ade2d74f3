//! `early_help_episodes` (extracts.md §5.3): early help assessments and episodes. The first
//! eight fields are Ofsted ILACS Annex A list 2, so a council can load its Annex A
//! workbook's "List 2" sheet directly (the `annex_a_list2` source of the nightly pipeline
//! maps its headers, dates and lettered codes); the rest are our additions for closure,
//! lead agency and linkage.

use super::check::age_years;
use super::{ColType, Field, KindState, Req, RowCheck, TableBuilder, field, pii};
use crate::rules::Rule;

/// Canonical input fields.
pub const FIELDS: &[Field] = &[
    pii("child_id", Req::Yes),
    field("sex", Req::Yes),
    field("ethnicity", Req::Yes),
    field("date_of_birth", Req::No),
    field("age_years", Req::No),
    field("episode_start_date", Req::Yes),
    field("assessment_completion_date", Req::No),
    field("organisation", Req::Yes),
    field("episode_end_date", Req::No),
    field("closure_reason", Req::Cond),
    field("lead_agency", Req::Yes),
    field("episode_id", Req::No),
    pii("family_id", Req::No),
    pii("nhs_number", Req::No),
    pii("upn", Req::No),
    pii("given_name", Req::No),
    pii("family_name", Req::No),
    pii("postcode", Req::No),
];

/// Curated columns.
pub const COLUMNS: &[(&str, ColType)] = &[
    ("child_key", ColType::Str),
    ("family_key", ColType::Str),
    ("key_nhs", ColType::Str),
    ("key_upn", ColType::Str),
    ("key_demo", ColType::Str),
    ("key_demo_name", ColType::Str),
    ("sex", ColType::Str),
    ("ethnicity", ColType::Str),
    ("date_of_birth", ColType::Date),
    ("episode_start_date", ColType::Date),
    ("assessment_completion_date", ColType::Date),
    ("organisation", ColType::Str),
    ("episode_end_date", ColType::Date),
    ("closure_reason", ColType::Str),
    ("lead_agency", ColType::Str),
    ("episode_id", ColType::Str),
    ("lsoa11", ColType::Str),
    ("lsoa21", ColType::Str),
    ("postcode_district", ColType::Str),
];

pub(super) fn row(r: &mut RowCheck<'_>, out: &mut TableBuilder, st: &mut KindState) -> bool {
    // The child id namespace comes from the mapping: `la_child_id` when the council's early
    // help system shares its ids with social care (then LA_ID links them).
    let child = r.local_key("child_id", "");
    let family = r.get("family_id").map(|f| {
        let ns = format!("{}_family", r.namespace());
        r.ctx.pseudonymiser.local(&ns, f)
    });
    let sex = r.code("sex", "sex", true);
    let ethnicity = r.code("ethnicity", "ethnicity", true);
    let dob = r.date("date_of_birth", false);
    let dob = r.not_future("date_of_birth", dob);
    let start = r.date("episode_start_date", true);
    let start = r.not_future("episode_start_date", start);
    let completed = r.date("assessment_completion_date", false);
    r.not_before(
        "assessment_completion_date",
        completed,
        "episode_start_date",
        start,
    );
    let organisation = r.required("organisation");
    let end = r.date("episode_end_date", false);
    let end = r.not_future("episode_end_date", end);
    r.not_before("episode_end_date", end, "episode_start_date", start);
    let closure = r.required_if(
        "closure_reason",
        end.is_some(),
        "an episode with an end date needs its closure reason",
    );
    let closure = closure.and_then(|c| {
        if r.ctx.has_code("early_help_closure_reason", c) {
            Some(c)
        } else {
            r.issue(
                "closure_reason",
                Rule::E004,
                format!("closure_reason {c:?} is not in reference/early_help_closure_reasons.csv."),
            );
            None
        }
    });
    let lead = r.code("lead_agency", "lead_agency", true);
    let key_nhs = r.nhs_key("nhs_number", false);
    let key_upn = r.upn_key("upn", false);
    let postcode = r.postcode("postcode", false, start);
    if let (Some(c), Some(s)) = (&child, start) {
        r.unique(
            &mut st.seen,
            "child_id",
            &format!("{c}|{s}"),
            "(child_id, episode_start_date)",
        );
    }
    match (dob, r.get("age_years")) {
        (None, _) => r.issue(
            "date_of_birth",
            Rule::W018,
            "Date of birth is missing: the episode is left out of age-based measures.",
        ),
        (Some(d), Some(age)) => {
            let on = start.unwrap_or(r.file.as_at);
            if age
                .trim()
                .parse::<f64>()
                .is_ok_and(|a| (a.floor() as i32 - age_years(d, on)).abs() > 1)
            {
                r.issue("age_years", Rule::W018, format!("Age {age} does not match the date of birth ({} on {on}); the date of birth is used.", age_years(d, on)));
            }
        }
        _ => {}
    }
    if !r.ok() {
        return false;
    }
    let key_demo = r.demo_key(r.get("family_name"), dob, postcode.as_ref());
    let key_demo_name = r.demo_name_key(r.get("family_name"), r.get("given_name"), dob);
    let pc = postcode.as_ref();
    out.str(child.as_deref())
        .str(family.as_deref())
        .str(key_nhs.as_deref())
        .str(key_upn.as_deref())
        .str(key_demo.as_deref())
        .str(key_demo_name.as_deref())
        .str(sex)
        .str(ethnicity)
        .date(dob)
        .date(start)
        .date(completed)
        .str(organisation)
        .date(end)
        .str(closure)
        .str(lead)
        .str(r.get("episode_id"))
        .str(pc.and_then(|p| p.lsoa11.as_deref()))
        .str(pc.and_then(|p| p.lsoa21.as_deref()))
        .str(pc.map(|p| p.outward.as_str()));
    true
}
