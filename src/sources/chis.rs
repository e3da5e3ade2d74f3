//! `chis` (extracts.md §4.1): the child health register.

use super::{ColType, Field, KindState, Req, RowCheck, TableBuilder, field, pii};

/// Canonical input fields.
pub const FIELDS: &[Field] = &[
    pii("nhs_number", Req::Yes),
    pii("local_id", Req::No),
    pii("given_name", Req::No),
    pii("family_name", Req::No),
    field("date_of_birth", Req::Yes),
    field("sex", Req::No),
    pii("postcode", Req::Yes),
    field("gp_practice", Req::No),
    field("registered_from", Req::Yes),
    field("registered_to", Req::No),
];

/// Curated columns.
pub const COLUMNS: &[(&str, ColType)] = &[
    ("key_nhs", ColType::Str),
    ("local_key", ColType::Str),
    ("key_demo", ColType::Str),
    ("key_demo_name", ColType::Str),
    ("date_of_birth", ColType::Date),
    ("sex", ColType::Str),
    ("lsoa11", ColType::Str),
    ("lsoa21", ColType::Str),
    ("postcode_district", ColType::Str),
    ("gp_practice", ColType::Str),
    ("registered_from", ColType::Date),
    ("registered_to", ColType::Date),
];

/// ODS practice code: a letter and five digits.
pub fn valid_ods(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 6 && b[0].is_ascii_uppercase() && b[1..].iter().all(u8::is_ascii_digit)
}

pub(super) fn row(r: &mut RowCheck<'_>, out: &mut TableBuilder, st: &mut KindState) -> bool {
    let key_nhs = r.nhs_key("nhs_number", true);
    let local = r
        .get("local_id")
        .map(|id| r.ctx.pseudonymiser.local("chis", id));
    let dob = r.date("date_of_birth", true);
    let dob = r.not_future("date_of_birth", dob);
    let sex = r.code("sex", "sex", false);
    let from = r.date("registered_from", true);
    let from = r.not_before_birth("registered_from", from, dob);
    let to = r.date("registered_to", false);
    r.not_before("registered_to", to, "registered_from", from);
    if let (Some(k), Some(f)) = (&key_nhs, from) {
        r.unique(
            &mut st.seen,
            "nhs_number",
            &format!("{k}|{f}"),
            "(nhs_number, registered_from)",
        );
    }
    let postcode = r.postcode("postcode", true, from);
    let gp = r.identifier(
        "gp_practice",
        false,
        valid_ods,
        "ODS practice code (a letter and five digits)",
    );
    if !r.ok() {
        return false;
    }
    let key_demo = r.demo_key(r.get("family_name"), dob, postcode.as_ref());
    let key_demo_name = r.demo_name_key(r.get("family_name"), r.get("given_name"), dob);
    let pc = postcode.as_ref();
    out.str(key_nhs.as_deref())
        .str(local.as_deref())
        .str(key_demo.as_deref())
        .str(key_demo_name.as_deref())
        .date(dob)
        .str(sex)
        .str(pc.and_then(|p| p.lsoa11.as_deref()))
        .str(pc.and_then(|p| p.lsoa21.as_deref()))
        .str(pc.map(|p| p.outward.as_str()))
        .str(gp)
        .date(from)
        .date(to);
    true
}
