//! `ofsted_inspections` (ofsted.md §3.2): real Ofsted inspections of a centre or group, shown
//! as a separate, clearly labelled row beside the self-evaluation's grades. Public data.

use super::{ColType, Field, KindState, Req, RowCheck, TableBuilder, field};

/// Canonical input fields.
pub const FIELDS: &[Field] = &[
    field("id", Req::Yes),
    field("urn", Req::No),
    field("inspection_date", Req::Yes),
    field("overall", Req::Yes),
    field("access", Req::No),
    field("quality", Req::No),
    field("leadership", Req::No),
    field("source_url", Req::No),
];

/// Curated columns.
pub const COLUMNS: &[(&str, ColType)] = &[
    ("id", ColType::Str),
    ("urn", ColType::Str),
    ("inspection_date", ColType::Date),
    ("overall", ColType::Int),
    ("access", ColType::Int),
    ("quality", ColType::Int),
    ("leadership", ColType::Int),
    ("source_url", ColType::Str),
];

pub(super) fn row(r: &mut RowCheck<'_>, out: &mut TableBuilder, st: &mut KindState) -> bool {
    // A centre id or a centre group id.
    let id = r.identifier(
        "id",
        true,
        super::centres::valid_centre_id,
        "centre or group id ([A-Za-z0-9_-]{1,32})",
    );
    let urn = r.get("urn").filter(|u| !u.is_empty());
    let date = r.date("inspection_date", true);
    let date = r.not_future("inspection_date", date);
    // Grades 1 (outstanding) … 4 (inadequate).
    let overall = r.int("overall", true, 1, 4);
    let access = r.int("access", false, 1, 4);
    let quality = r.int("quality", false, 1, 4);
    let leadership = r.int("leadership", false, 1, 4);
    let url = r.get("source_url").filter(|u| !u.is_empty());
    if let (Some(i), Some(d)) = (id, date) {
        r.unique(
            &mut st.seen,
            "inspection_date",
            &format!("{i}\u{1f}{d}"),
            "id and inspection date",
        );
    }
    if !r.ok() {
        return false;
    }
    out.str(id)
        .str(urn)
        .date(date)
        .int(overall)
        .int(access)
        .int(quality)
        .int(leadership)
        .str(url);
    true
}
