//! `reach_areas` (extracts.md §3.2): the LSOAs each centre is responsible for.

use super::{ColType, Field, KindState, Req, RowCheck, TableBuilder, field};
use crate::rules::Rule;

/// Canonical input fields.
pub const FIELDS: &[Field] = &[field("centre_id", Req::Yes), field("lsoa_code", Req::Yes)];

/// Curated columns.
pub const COLUMNS: &[(&str, ColType)] = &[
    ("centre_id", ColType::Str),
    ("lsoa_code", ColType::Str),
    ("lsoa_vintage", ColType::Int),
];

/// `E01` followed by six digits.
pub fn valid_lsoa(code: &str) -> bool {
    code.len() == 9 && code.starts_with("E01") && code[3..].bytes().all(|b| b.is_ascii_digit())
}

pub(super) fn row(r: &mut RowCheck<'_>, out: &mut TableBuilder, st: &mut KindState) -> bool {
    let centre = r.required("centre_id");
    if let Some(c) = centre
        && !r.ctx.centres.contains_key(c)
    {
        r.issue(
            "centre_id",
            Rule::E008,
            format!("Centre {c:?} is not in the centres extract."),
        );
    }
    let lsoa = r.identifier(
        "lsoa_code",
        true,
        valid_lsoa,
        "LSOA code (E01 and six digits)",
    );
    let vintage = r.ctx.reach_vintage;
    if let Some(l) = lsoa {
        let known = r.ctx.geography.lsoas.get(&vintage);
        if known.is_some_and(|k| !k.contains(l)) {
            r.issue("lsoa_code", Rule::E008, format!("LSOA {l} is not in the IoD file of the {vintage} vintage; check the lsoa_vintage of this source."));
        } else {
            r.unique(
                &mut st.seen,
                "lsoa_code",
                l,
                "LSOA (an LSOA may belong to only one centre)",
            );
        }
    }
    if !r.ok() {
        return false;
    }
    out.str(centre).str(lsoa).int(Some(i64::from(vintage)));
    true
}
