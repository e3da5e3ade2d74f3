//! `centre_groups` (extracts.md §3.1, ofsted.md §1.2): children's centre groups, two or more
//! centres sharing leadership and evaluated together. Not personal data.

use super::{ColType, Field, KindState, Req, RowCheck, TableBuilder, field};
use crate::rules::Rule;

/// Canonical input fields.
pub const FIELDS: &[Field] = &[
    field("group_id", Req::Yes),
    field("group_name", Req::Yes),
    field("centre_id", Req::Yes),
];

/// Curated columns.
pub const COLUMNS: &[(&str, ColType)] = &[
    ("group_id", ColType::Str),
    ("group_name", ColType::Str),
    ("centre_id", ColType::Str),
];

pub(super) fn row(r: &mut RowCheck<'_>, out: &mut TableBuilder, st: &mut KindState) -> bool {
    let group = r.identifier(
        "group_id",
        true,
        super::centres::valid_centre_id,
        "group id ([A-Za-z0-9_-]{1,32})",
    );
    let name = r.required("group_name");
    let centre = r.required("centre_id");
    if let Some(c) = centre {
        if !r.ctx.centres.contains_key(c) {
            r.issue(
                "centre_id",
                Rule::E008,
                format!("Centre {c:?} is not in the centres extract."),
            );
        } else {
            // A centre is evaluated with one group only.
            r.unique(
                &mut st.seen,
                "centre_id",
                c,
                "centre (a centre belongs to one group)",
            );
        }
    }
    if !r.ok() {
        return false;
    }
    out.str(group).str(name).str(centre);
    true
}
