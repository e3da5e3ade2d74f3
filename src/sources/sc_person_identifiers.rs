//! `sc_person_identifiers` (extracts.md §5.4): the optional side file from a council's
//! case-management system that gives social care children (known by their LA child id)
//! the identifiers the census formats lack. It is used only for linkage keys and for
//! placing children in reach areas: nothing in it is stored in clear.

use super::{ColType, Field, KindState, Req, RowCheck, TableBuilder, pii};

/// Canonical input fields.
pub const FIELDS: &[Field] = &[
    pii("la_child_id", Req::Yes),
    pii("nhs_number", Req::No),
    pii("upn", Req::No),
    pii("given_name", Req::No),
    pii("family_name", Req::No),
    super::field("date_of_birth", Req::No),
    pii("postcode", Req::No),
];

/// Curated columns.
pub const COLUMNS: &[(&str, ColType)] = &[
    ("la_child_key", ColType::Str),
    ("key_nhs", ColType::Str),
    ("key_upn", ColType::Str),
    ("key_demo", ColType::Str),
    ("key_demo_name", ColType::Str),
    ("date_of_birth", ColType::Date),
    ("lsoa11", ColType::Str),
    ("lsoa21", ColType::Str),
    ("postcode_district", ColType::Str),
];

pub(super) fn row(r: &mut RowCheck<'_>, out: &mut TableBuilder, st: &mut KindState) -> bool {
    let id = r.required("la_child_id");
    let la_key = id.map(|id| {
        r.ctx
            .pseudonymiser
            .local(super::cin::LA_CHILD_NAMESPACE, id)
    });
    if let Some(k) = &la_key {
        r.unique(&mut st.seen, "la_child_id", k, "la_child_id");
    }
    let key_nhs = r.nhs_key("nhs_number", false);
    let key_upn = r.upn_key("upn", false);
    let dob = r.date("date_of_birth", false);
    let dob = r.not_future("date_of_birth", dob);
    let postcode = r.postcode("postcode", false, None);
    if !r.ok() {
        return false;
    }
    let key_demo = r.demo_key(r.get("family_name"), dob, postcode.as_ref());
    let key_demo_name = r.demo_name_key(r.get("family_name"), r.get("given_name"), dob);
    let pc = postcode.as_ref();
    out.str(la_key.as_deref())
        .str(key_nhs.as_deref())
        .str(key_upn.as_deref())
        .str(key_demo.as_deref())
        .str(key_demo_name.as_deref())
        .date(dob)
        .str(pc.and_then(|p| p.lsoa11.as_deref()))
        .str(pc.and_then(|p| p.lsoa21.as_deref()))
        .str(pc.map(|p| p.outward.as_str()));
    true
}
