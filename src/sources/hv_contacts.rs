//! `hv_contacts` (extracts.md §4.2): health visiting contacts and mandated reviews.

use super::{ColType, Field, KindState, Req, RowCheck, TableBuilder, field, pii};
use crate::rules::Rule;

/// Canonical input fields.
pub const FIELDS: &[Field] = &[
    field("contact_id", Req::Yes),
    pii("nhs_number", Req::Yes),
    field("contact_type", Req::Yes),
    field("contact_date", Req::Yes),
    field("face_to_face", Req::Yes),
    field("feeding_status", Req::No),
    field("service_level", Req::No),
];

/// Curated columns.
pub const COLUMNS: &[(&str, ColType)] = &[
    ("contact_id", ColType::Str),
    ("key_nhs", ColType::Str),
    ("contact_type", ColType::Str),
    ("contact_date", ColType::Date),
    ("face_to_face", ColType::Bool),
    ("feeding_status", ColType::Str),
    ("service_level", ColType::Str),
    ("in_chis", ColType::Bool),
];

pub(super) fn row(r: &mut RowCheck<'_>, out: &mut TableBuilder, st: &mut KindState) -> bool {
    let id = r.required("contact_id");
    if let Some(id) = id {
        r.unique(&mut st.seen, "contact_id", id, "contact_id");
    }
    let key = r.nhs_key("nhs_number", true);
    let kind = r.code("contact_type", "contact_type", true);
    let antenatal = kind == Some("ANTENATAL");
    // The antenatal contact carries the mother's NHS number, so no child DOB applies.
    let dob = key
        .as_deref()
        .filter(|_| !antenatal)
        .and_then(|k| r.ctx.chis.get(k))
        .copied();
    let date = r.date("contact_date", true);
    let date = r.not_future("contact_date", date);
    let date = r.not_before_birth("contact_date", date, dob);
    let f2f = r.boolean("face_to_face", true);
    let mut feeding = r.code("feeding_status", "feeding_status", false);
    let level = r.code("service_level", "service_level", false);
    if !r.ok() {
        return false;
    }
    let in_chis = key.as_deref().is_some_and(|k| r.ctx.chis.contains_key(k));
    if !antenatal && !in_chis {
        r.issue("nhs_number", Rule::W005, "Child is not in the child health register: kept, but excluded from cohort metrics that need a date of birth.");
    }
    if feeding.is_some() && !matches!(kind, Some("NBV" | "REVIEW_6_8W")) {
        r.issue(
            "feeding_status",
            Rule::W008,
            "Feeding status applies only to NBV and REVIEW_6_8W contacts; ignored.",
        );
        feeding = None;
    }
    let feeding = match (feeding, kind) {
        (None, Some("NBV" | "REVIEW_6_8W")) => Some("not_recorded"),
        (f, _) => f,
    };
    out.str(id)
        .str(key.as_deref())
        .str(kind)
        .date(date)
        .bool(f2f)
        .str(feeding)
        .str(level)
        .bool(Some(in_chis));
    true
}
