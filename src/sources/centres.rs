//! `centres` (extracts.md §3.1): children's centre sites. Not personal data; stored in clear.

use super::{ColType, Field, KindState, Req, RowCheck, TableBuilder, field};
use crate::rules::Rule;

/// Canonical input fields.
pub const FIELDS: &[Field] = &[
    field("centre_id", Req::Yes),
    field("name", Req::Yes),
    field("provider", Req::Yes),
    field("early_help_area", Req::Yes),
    field("lot", Req::No),
    field("postcode", Req::Yes),
    field("lat", Req::No),
    field("lon", Req::No),
    field("open_date", Req::Yes),
    field("close_date", Req::No),
    field("site_type", Req::Yes),
];

/// Curated columns.
pub const COLUMNS: &[(&str, ColType)] = &[
    ("centre_id", ColType::Str),
    ("name", ColType::Str),
    ("provider", ColType::Str),
    ("early_help_area", ColType::Str),
    ("lot", ColType::Str),
    ("postcode", ColType::Str),
    ("lsoa11", ColType::Str),
    ("lsoa21", ColType::Str),
    ("lat", ColType::Float),
    ("lon", ColType::Float),
    ("coordinates_from_postcode", ColType::Bool),
    ("open_date", ColType::Date),
    ("close_date", ColType::Date),
    ("site_type", ColType::Str),
];

/// Centre ids: letters, digits, `_` and `-`, 1–32 characters.
pub fn valid_centre_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub(super) fn row(r: &mut RowCheck<'_>, out: &mut TableBuilder, st: &mut KindState) -> bool {
    let id = r.identifier(
        "centre_id",
        true,
        valid_centre_id,
        "centre id ([A-Za-z0-9_-]{1,32})",
    );
    if id == Some("CENTRAL") {
        r.issue(
            "centre_id",
            Rule::E015,
            "CENTRAL is reserved for central costs and cannot be a site id.",
        );
    }
    if let Some(id) = id {
        r.unique(&mut st.seen, "centre_id", id, "centre_id");
    }
    let name = r.required("name");
    let provider = r.required("provider");
    let area = r.required("early_help_area");
    let lot = r.get("lot");
    if let (Some(lot), Some(lots)) = (lot, &r.ctx.lots)
        && !lots.contains(lot)
    {
        r.issue(
            "lot",
            Rule::E008,
            format!("Lot {lot:?} is not in the contracts extract."),
        );
    }
    let open = r.date("open_date", true);
    let close = r.date("close_date", false);
    r.not_before("close_date", close, "open_date", open);
    let postcode = r.postcode("postcode", true, open);
    let lat = r.number("lat", false, 49.8, 55.9);
    let lon = r.number("lon", false, -6.5, 1.8);
    if r.get("lat").is_some() != r.get("lon").is_some() {
        r.issue(
            "lat",
            Rule::E009,
            "Give both lat and lon, or neither (then they come from the postcode).",
        );
    }
    let site_type = r.code("site_type", "site_type", true);
    if !r.ok() {
        return false;
    }
    let (lat_lon, derived) = match (lat, lon) {
        (Some(a), Some(o)) => (Some((a, o)), false),
        _ => {
            let ll = postcode.as_ref().and_then(|p| p.lat_lon);
            if ll.is_some() {
                r.issue(
                    "postcode",
                    Rule::W014,
                    "Site coordinates derived from the postcode centroid.",
                );
            }
            (ll, ll.is_some())
        }
    };
    let pc = postcode.as_ref();
    out.str(id)
        .str(name)
        .str(provider)
        .str(area)
        .str(lot)
        .str(pc.map(|p| p.normalised.as_str()))
        .str(pc.and_then(|p| p.lsoa11.as_deref()))
        .str(pc.and_then(|p| p.lsoa21.as_deref()))
        .float(lat_lon.map(|l| l.0))
        .float(lat_lon.map(|l| l.1))
        .bool(Some(derived))
        .date(open)
        .date(close)
        .str(site_type);
    true
}
