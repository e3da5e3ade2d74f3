//! `activities` (extracts.md §3.4): the activity catalogue.

use super::{ColType, Field, KindState, Req, RowCheck, TableBuilder, field};

/// Canonical input fields.
pub const FIELDS: &[Field] = &[
    field("activity_code", Req::Yes),
    field("name", Req::Yes),
    field("service_type", Req::Yes),
    field("programme", Req::No),
];

/// Curated columns.
pub const COLUMNS: &[(&str, ColType)] = &[
    ("activity_code", ColType::Str),
    ("name", ColType::Str),
    ("service_type", ColType::Str),
    ("programme", ColType::Str),
];

pub(super) fn row(r: &mut RowCheck<'_>, out: &mut TableBuilder, st: &mut KindState) -> bool {
    let code = r.required("activity_code");
    if let Some(c) = code {
        r.unique(&mut st.seen, "activity_code", c, "activity_code");
    }
    let name = r.required("name");
    let service_type = r.code("service_type", "service_type", true);
    let programme = r.get("programme");
    if !r.ok() {
        return false;
    }
    out.str(code).str(name).str(service_type).str(programme);
    true
}
