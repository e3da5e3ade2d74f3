//! `attendances` (extracts.md §3.5): one row per person per session.

use super::{ColType, Field, KindState, Req, RowCheck, TableBuilder, field, pii};
use crate::rules::Rule;

/// Canonical input fields.
pub const FIELDS: &[Field] = &[
    field("attendance_id", Req::Yes),
    pii("person_id", Req::Yes),
    pii("family_id", Req::Yes),
    field("centre_id", Req::Yes),
    field("activity_code", Req::Yes),
    field("venue_type", Req::Yes),
    field("session_date", Req::Yes),
    field("duration_minutes", Req::No),
];

/// Curated columns.
pub const COLUMNS: &[(&str, ColType)] = &[
    ("attendance_id", ColType::Str),
    ("person_key", ColType::Str),
    ("family_key", ColType::Str),
    ("centre_id", ColType::Str),
    ("activity_code", ColType::Str),
    ("venue_type", ColType::Str),
    ("session_date", ColType::Date),
    ("duration_minutes", ColType::Int),
];

pub(super) fn row(r: &mut RowCheck<'_>, out: &mut TableBuilder, st: &mut KindState) -> bool {
    let id = r.required("attendance_id");
    if let Some(id) = id {
        r.unique(&mut st.seen, "attendance_id", id, "attendance_id");
    }
    let person = r.local_key("person_id", "");
    let family = r.local_key("family_id", "_family");
    let registered = person.as_deref().and_then(|p| r.ctx.registration(p));
    if person.is_some() && registered.is_none() {
        r.issue(
            "person_id",
            Rule::E008,
            "Person is not in the registrations extract; register them or correct the id.",
        );
    }
    let centre = r.required("centre_id");
    let centre_dates = centre.and_then(|c| r.ctx.centres.get(c)).copied();
    if let (Some(c), None) = (centre, centre_dates) {
        r.issue(
            "centre_id",
            Rule::E008,
            format!("Centre {c:?} is not in the centres extract."),
        );
    }
    let activity = r.required("activity_code");
    if let Some(a) = activity
        && !r.ctx.activities.contains(a)
    {
        r.issue(
            "activity_code",
            Rule::E008,
            format!("Activity {a:?} is not in the activities extract."),
        );
    }
    let venue = r.code("venue_type", "venue_type", true);
    let date = r.date("session_date", true);
    let date = r.not_future("session_date", date);
    let date = r.not_before_birth(
        "session_date",
        date,
        registered.and_then(|p| p.date_of_birth),
    );
    let minutes = r.int("duration_minutes", false, 1, 1440);
    if !r.ok() {
        return false;
    }
    let family_differs = matches!((registered, &family), (Some(reg), Some(f)) if reg.family_hash != super::key_hash(f));
    if family_differs {
        r.issue(
            "family_id",
            Rule::W006,
            "Family differs from the person's registration; the registration's family is used.",
        );
    }
    if let (Some(d), Some(c)) = (date, centre_dates)
        && (c.open.is_some_and(|o| d < o) || c.close.is_some_and(|x| d > x))
    {
        r.issue(
            "session_date",
            Rule::W010,
            "Session is outside the centre's open/close dates.",
        );
    }
    if minutes.is_some_and(|m| m > 480) {
        r.issue(
            "duration_minutes",
            Rule::W015,
            "Session longer than 8 hours.",
        );
    }
    // The registration's family wins; read its string only when it differs.
    let family = match registered {
        Some(reg) if family_differs || family.is_none() => Some(reg.family_key.as_str()),
        _ => family.as_deref(),
    };
    out.str(id)
        .str(person.as_deref())
        .str(family)
        .str(centre)
        .str(activity)
        .str(venue)
        .date(date)
        .int(minutes);
    true
}
