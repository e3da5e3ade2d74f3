//! `sql/staging/stg_child_engagement.sql` on hand-made contact days: the first day on which
//! a child reaches N contact units within the sustained window (metrics.md §3.3), counted
//! in contact days (an equi-join on the day's number) and in attendances (a range join).
//! The window is (day − 12 months, day]: a day exactly 12 months earlier is outside it.

use std::collections::BTreeMap;

use arrow::array::AsArray;
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::prelude::SessionContext;

const DAYS: &str = "
    ('A', date '2024-01-10', 1), ('A', date '2024-06-01', 1), ('A', date '2025-01-09', 1),
    ('B', date '2024-01-09', 1), ('B', date '2024-06-01', 1), ('B', date '2025-01-09', 1),
    ('B', date '2025-02-01', 1),
    ('C', date '2024-05-01', 1), ('C', date '2024-05-02', 1),
    ('D', date '2024-03-01', 2), ('D', date '2024-03-05', 1),
    ('E', date '2023-01-01', 1), ('E', date '2023-02-01', 1), ('E', date '2023-03-01', 1),
    ('E', date '2023-04-01', 1)";

async fn first_sustained(contact_unit: &str) -> BTreeMap<String, String> {
    let ctx = SessionContext::new();
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
