//! `registrations` (extracts.md §3.3): one row per person registered with a centre.
//! Person and family ids, NHS numbers, names and postcodes leave as keyed hashes and
//! geography only.

use super::check::age_years;
use super::{ColType, Field, KindState, Req, RowCheck, TableBuilder, field, pii};
use crate::rules::Rule;

/// The boolean target-group flags, in column order.
pub const FLAGS: &[&str] = &[
    "lone_parent",
    "teenage_parent",
    "workless_household",
    "disability",
    "eal",
    "father",
];

/// Canonical input fields.
pub const FIELDS: &[Field] = &[
    pii("person_id", Req::Yes),
    pii("family_id", Req::Yes),
    field("centre_id", Req::Yes),
    field("role", Req::Yes),
    pii("nhs_number", Req::No),
    pii("given_name", Req::No),
    pii("family_name", Req::Cond),
    field("date_of_birth", Req::Cond),
    field("sex", Req::No),
    pii("postcode", Req::Cond),
    field("ethnicity", Req::No),
    field("registration_date", Req::Yes),
    field("lone_parent", Req::No),
    field("teenage_parent", Req::No),
    field("workless_household", Req::No),
    field("disability", Req::No),
    field("eal", Req::No),
    field("father", Req::No),
    field("other_flags", Req::No),
];

/// Curated columns.
pub const COLUMNS: &[(&str, ColType)] = &[
    ("person_key", ColType::Str),
    ("family_key", ColType::Str),
    ("centre_id", ColType::Str),
    ("role", ColType::Str),
    ("key_nhs", ColType::Str),
    ("key_demo", ColType::Str),
    ("key_demo_name", ColType::Str),
    ("date_of_birth", ColType::Date),
    ("sex", ColType::Str),
    ("lsoa11", ColType::Str),
    ("lsoa21", ColType::Str),
    ("postcode_district", ColType::Str),
    ("ethnicity", ColType::Str),
    ("registration_date", ColType::Date),
    ("lone_parent", ColType::Bool),
    ("teenage_parent", ColType::Bool),
    ("workless_household", ColType::Bool),
    ("disability", ColType::Bool),
    ("eal", ColType::Bool),
    ("father", ColType::Bool),
    ("other_flags", ColType::Str),
];

pub(super) fn row(r: &mut RowCheck<'_>, out: &mut TableBuilder, st: &mut KindState) -> bool {
    let person = r.local_key("person_id", "");
    if let Some(p) = &person {
        r.unique(&mut st.seen, "person_id", p, "person_id");
    }
    let family = r.local_key("family_id", "_family");
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
    let role = r.code("role", "role", true);
    let child = role == Some("child");
    let key_nhs = r.nhs_key("nhs_number", false);
    if child && r.get("nhs_number").is_none() {
        r.issue(
            "nhs_number",
            Rule::W003,
            "No NHS number for a child: linkage falls back to name, date of birth and postcode.",
        );
    }
    let surname = r.required_if("family_name", child, "for a child (fallback linkage)");
    r.required_if("date_of_birth", child, "for a child");
    let dob = r.date("date_of_birth", false);
    let dob = r.not_future("date_of_birth", dob);
    let sex = r.code("sex", "sex", false);
    r.required_if("postcode", child, "for a child");
    let registered = r.date("registration_date", true);
    let registered = r.not_future("registration_date", registered);
    let registered = r.not_before_birth("registration_date", registered, dob);
    let postcode = r.postcode("postcode", false, registered);
    let ethnicity = r.code("ethnicity", "ethnicity", false);
    if r.get("ethnicity").is_none() {
        r.issue("ethnicity", Rule::W011, "Ethnicity is missing.");
    }
    let flags: Vec<Option<bool>> = FLAGS.iter().map(|f| r.boolean(f, false)).collect();
    let other = r.code_list("other_flags", "other_flag");
    if !r.ok() {
        return false;
    }
    if let (true, Some(d), Some(reg)) = (child, dob, registered)
        && age_years(d, reg) >= 5
    {
        r.issue(
            "date_of_birth",
            Rule::W012,
            "Child aged 5 or over at registration.",
        );
    }
    let key_demo = r.demo_key(surname.filter(|_| child), dob, postcode.as_ref());
    let key_demo_name = r.demo_name_key(
        surname.filter(|_| child),
        r.get("given_name").filter(|_| child),
        dob,
    );
    let pc = postcode.as_ref();
    out.str(person.as_deref())
        .str(family.as_deref())
        .str(centre)
        .str(role)
        .str(key_nhs.as_deref())
        .str(key_demo.as_deref())
        .str(key_demo_name.as_deref())
        .date(dob)
        .str(sex)
        .str(pc.and_then(|p| p.lsoa11.as_deref()))
        .str(pc.and_then(|p| p.lsoa21.as_deref()))
        .str(pc.map(|p| p.outward.as_str()))
        .str(ethnicity);
    out.date(registered);
    for f in flags {
        out.bool(f);
    }
    out.str(other.map(|o| o.join(";")).as_deref());
    true
}
