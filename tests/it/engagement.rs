//! `sql/staging/stg_child_engagement.sql` on hand-made contact days: the first day on which
//! a child reaches N contact units within the sustained window (metrics.md §3.3), counted
//! in contact days (an equi-join on the day's number) and in attendances (a range join).
//! The window is (day − 12 months, day]: a day exactly 12 months earlier is outside it.
//! An incremental build (from a recompute date, keeping the children sustained before it)
//! gives the full build's answer from every date of the fixture.

use std::collections::BTreeMap;

use arrow::array::AsArray;
use arrow::compute::cast;
use arrow::datatypes::DataType;
use chrono::NaiveDate;
use datafusion::prelude::SessionContext;
use earlystart::metrics::incremental::FULL_FROM;

const DAYS: &str = "
    ('A', date '2024-01-10', 1), ('A', date '2024-06-01', 1), ('A', date '2025-01-09', 1),
    ('B', date '2024-01-09', 1), ('B', date '2024-06-01', 1), ('B', date '2025-01-09', 1),
    ('B', date '2025-02-01', 1),
    ('C', date '2024-05-01', 1), ('C', date '2024-05-02', 1),
    ('D', date '2024-03-01', 2), ('D', date '2024-03-05', 1),
    ('E', date '2023-01-01', 1), ('E', date '2023-02-01', 1), ('E', date '2023-03-01', 1),
    ('E', date '2023-04-01', 1)";

/// The model's rows, computed as a build from `from` does (`FULL_FROM`: a full build), with
/// `last_build` holding the children of `sustained_before` (the rows a night keeps).
async fn first_sustained_from(
    contact_unit: &str,
    from: NaiveDate,
    sustained_before: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let ctx = SessionContext::new();
    let kept: Vec<String> = sustained_before
        .keys()
        .map(|c| format!("select '{c}' as child_key"))
        .collect();
    let last_build = if kept.is_empty() {
        "create table last_build as select 'none' as child_key where false".to_string()
    } else {
        format!("create table last_build as {}", kept.join(" union all "))
    };
    ctx.register_udf(earlystart::metrics::incremental::recompute_from_udf(from));
    for sql in [
        format!(
            "create table metric_params as select 3 as sustained_min_contacts, \
             12 as sustained_window_months, '{contact_unit}' as contact_unit"
        ),
        format!(
            "create table stg_contact_dates as select column1 as child_key, \
             column2 as contact_date, cast(column3 as bigint) as attendances \
             from (values {DAYS})"
        ),
        last_build,
    ] {
        ctx.sql(&sql).await.unwrap().collect().await.unwrap();
    }
    let model = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("sql/staging/stg_child_engagement.sql"),
    )
    .unwrap();
    let mut out = BTreeMap::new();
    for b in ctx.sql(&model).await.unwrap().collect().await.unwrap() {
        let child = cast(b.column_by_name("child_key").unwrap(), &DataType::Utf8).unwrap();
        let date = cast(
            b.column_by_name("first_sustained_date").unwrap(),
            &DataType::Utf8,
        )
        .unwrap();
        for i in 0..b.num_rows() {
            out.insert(
                child.as_string::<i32>().value(i).to_string(),
                date.as_string::<i32>().value(i).to_string(),
            );
        }
    }
    out
}

async fn first_sustained(contact_unit: &str) -> BTreeMap<String, String> {
    first_sustained_from(contact_unit, FULL_FROM, &BTreeMap::new()).await
}

/// From each day of the fixture (and the day after each): the full build's rows dated
/// before it, plus the rows computed from it for children not among those, equal the full
/// build, whether the build knows those children from its last build or not; and nothing
/// computed from it is dated earlier.
async fn incremental_equals_full(contact_unit: &str) {
    let full = first_sustained(contact_unit).await;
    let days: Vec<NaiveDate> = DAYS
        .split("date '")
        .skip(1)
        .map(|s| NaiveDate::parse_from_str(&s[..10], "%Y-%m-%d").unwrap())
        .collect();
    for from in days.iter().flat_map(|d| [*d, d.succ_opt().unwrap()]) {
        let iso = from.to_string();
        let kept: BTreeMap<String, String> = full
            .iter()
            .filter(|(_, d)| **d < iso)
            .map(|(c, d)| (c.clone(), d.clone()))
            .collect();
        for last_build in [BTreeMap::new(), kept.clone()] {
            let new = first_sustained_from(contact_unit, from, &last_build).await;
            assert!(new.values().all(|d| *d >= iso), "from {from}: {new:?}");
            if !last_build.is_empty() {
                // The children already sustained are not looked at again.
                assert!(
                    new.keys().all(|c| !kept.contains_key(c)),
                    "from {from}: {new:?}"
                );
            }
            let mut merged = kept.clone();
            for (c, d) in new {
                merged.entry(c).or_insert(d);
            }
            assert_eq!(merged, full, "{contact_unit} from {from}");
        }
    }
}

#[tokio::test]
async fn an_incremental_build_finds_the_same_first_dates() {
    incremental_equals_full("session_day").await;
    incremental_equals_full("attendance").await;
}

#[tokio::test]
async fn sustained_in_contact_days() {
    let got = first_sustained("session_day").await;
    let want: BTreeMap<String, String> = [
        // 2024-01-10 is inside the window ending 2025-01-09.
        ("A", "2025-01-09"),
        // 2024-01-09 is exactly 12 months before: outside; the fourth day makes three.
        ("B", "2025-02-01"),
        // Three days by 2023-03-01; the later fourth day does not move the first date.
        ("E", "2023-03-01"),
    ]
    .into_iter()
    .map(|(c, d)| (c.to_string(), d.to_string()))
    .collect();
    // C has two days only; D has two days (three attendances).
    assert_eq!(got, want);
}

#[tokio::test]
async fn sustained_in_attendances() {
    let got = first_sustained("attendance").await;
    let want: BTreeMap<String, String> = [
        ("A", "2025-01-09"),
        ("B", "2025-02-01"),
        // Two attendances on the first day and one on the second make three.
        ("D", "2024-03-05"),
        ("E", "2023-03-01"),
    ]
    .into_iter()
    .map(|(c, d)| (c.to_string(), d.to_string()))
    .collect();
    assert_eq!(got, want);
}
