//! `asq3` (extracts.md §4.3): ASQ-3 domain scores from the 2–2½ year review, with ratio
//! scoring of raw scores that have one or two missing items.

use super::check::age_months;
use super::{ColType, Field, KindState, Req, RowCheck, TableBuilder, field, pii};
use crate::rules::Rule;

/// The five ASQ-3 domains, in column order.
pub const DOMAINS: &[&str] = &[
    "communication",
    "gross_motor",
    "fine_motor",
    "problem_solving",
    "personal_social",
];

/// Canonical input fields.
pub const FIELDS: &[Field] = &[
    pii("nhs_number", Req::Yes),
    field("review_date", Req::Yes),
    field("questionnaire_months", Req::Yes),
    field("communication", Req::No),
    field("gross_motor", Req::No),
    field("fine_motor", Req::No),
    field("problem_solving", Req::No),
    field("personal_social", Req::No),
    field("communication_items", Req::No),
    field("gross_motor_items", Req::No),
    field("fine_motor_items", Req::No),
    field("problem_solving_items", Req::No),
    field("personal_social_items", Req::No),
    field("score_basis", Req::No),
];

/// Curated columns.
pub const COLUMNS: &[(&str, ColType)] = &[
    ("key_nhs", ColType::Str),
    ("review_date", ColType::Date),
    ("questionnaire_months", ColType::Int),
    ("age_months", ColType::Int),
    ("communication", ColType::Float),
    ("gross_motor", ColType::Float),
    ("fine_motor", ColType::Float),
    ("problem_solving", ColType::Float),
    ("personal_social", ColType::Float),
    ("in_chis", ColType::Bool),
];

/// Adjusted domain score: ratio scoring for a raw score with one or two items missing;
/// `None` (not scored) with three or more missing.
pub fn adjusted_score(score: f64, items: i64, raw_basis: bool) -> Option<f64> {
    if items <= 3 {
        None
    } else if raw_basis && items < 6 {
        Some(score * 6.0 / items as f64)
    } else {
        Some(score)
    }
}

pub(super) fn row(r: &mut RowCheck<'_>, out: &mut TableBuilder, st: &mut KindState) -> bool {
    let key = r.nhs_key("nhs_number", true);
    let dob = key.as_deref().and_then(|k| r.ctx.chis.get(k)).copied();
    let date = r.date("review_date", true);
    let date = r.not_future("review_date", date);
    let date = r.not_before_birth("review_date", date, dob);
    let q = r.int("questionnaire_months", true, 0, 120);
    if let Some(q) = q
        && !r.ctx.has_code("asq3_questionnaire", &q.to_string())
    {
        r.issue(
            "questionnaire_months",
            Rule::E004,
            format!("{q} is not an ASQ-3 questionnaire interval (asq3_windows.csv)."),
        );
    }
    let raw_basis = r.code("score_basis", "score_basis", false) == Some("raw");
    let scores: Vec<Option<f64>> = DOMAINS
        .iter()
        .map(|d| r.number(d, false, 0.0, 60.0))
        .collect();
    let items: Vec<i64> = DOMAINS
        .iter()
        .map(|d| r.int(&format!("{d}_items"), false, 0, 6).unwrap_or(6))
        .collect();
    if let (Some(k), Some(d), Some(q)) = (&key, date, q) {
        r.unique(
            &mut st.seen,
            "nhs_number",
            &format!("{k}|{d}|{q}"),
            "(nhs_number, review_date, questionnaire_months)",
        );
    }
    if !r.ok() {
        return false;
    }
    let age = dob.zip(date).map(|(b, d)| age_months(b, d));
    if dob.is_none() {
        r.issue(
            "nhs_number",
            Rule::W005,
            "Child is not in the child health register: age at review unknown.",
        );
    }
    if let (Some(age), Some(b), Some(d), Some(w)) =
        (age, dob, date, q.and_then(|q| r.ctx.asq_windows.get(&q)))
        && !w.contains(b, d)
    {
        r.issue(
            "questionnaire_months",
            Rule::W004,
            format!(
                "Child aged {age} months is outside this questionnaire's window ({}m{}d–{}m{}d).",
                w.from.0, w.from.1, w.to.0, w.to.1
            ),
        );
    }
    let mut adjusted = Vec::with_capacity(DOMAINS.len());
    for ((d, s), n) in DOMAINS.iter().zip(&scores).zip(&items) {
        let a = s.and_then(|s| adjusted_score(s, *n, raw_basis));
        if s.is_some() && a.is_none() {
            r.issue(
                d,
                Rule::W021,
                format!("{d} has {} of 6 items answered: domain not scored.", n),
            );
        }
        adjusted.push(a);
    }
    out.str(key.as_deref()).date(date).int(q).int(age);
    for a in adjusted {
        out.float(a);
    }
    out.bool(Some(dob.is_some()));
    true
}
