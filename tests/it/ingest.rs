//! Ingest: every injected fault is caught at its exact row with its rule, and good rows load.

use std::collections::BTreeSet;

use arrow::array::AsArray;
use earlystart::generate::{Scale, generate};
use earlystart::lake::{Lake, OPS};

use crate::support::run_nightly;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dirty_ground_truth_is_fully_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let extracts = dir.path().join("extracts");
    generate(Scale::Tiny, 7, true, &extracts).unwrap();
    let summary = run_nightly(&extracts, &dir.path().join("lake")).await;
    assert_eq!(
        summary.exit_code(),
        1,
        "a run with quarantined rows exits 1"
    );

    let mut truth = BTreeSet::new();
    let mut r = csv::Reader::from_path(extracts.join("ground_truth.csv")).unwrap();
    for rec in r.records() {
        let rec = rec.unwrap();
        truth.insert((
            rec[0].to_string(),
            rec[1].parse::<i64>().unwrap(),
            rec[3].to_string(),
        ));
    }
    assert_eq!(truth.len(), 27, "the dirty generator injects 27 faults");

    let lake = Lake::open(&dir.path().join("lake").to_string_lossy()).unwrap();
    let mut found = BTreeSet::new();
    for b in lake.read(OPS, "quarantine").await.unwrap().unwrap() {
        let cast = |n: &str| {
            arrow::compute::cast(
                b.column_by_name(n).unwrap(),
                &arrow::datatypes::DataType::Utf8,
            )
            .unwrap()
        };
        let (file, rule) = (cast("file_path"), cast("rule_id"));
        let rows = b
            .column_by_name("row_number")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int64Type>()
            .clone();
        for i in 0..b.num_rows() {
            found.insert((
                file.as_string::<i32>().value(i).to_string(),
                rows.value(i),
                rule.as_string::<i32>().value(i).to_string(),
            ));
        }
    }
    assert_eq!(found, truth, "quarantine holds exactly the injected faults");

    // Row accounting: every record read was loaded or quarantined.
    for f in &summary.files {
        assert_eq!(
            f.rows_read,
            f.rows_loaded + f.rows_quarantined,
            "{}",
            f.path
        );
    }
    let quarantined: u64 = summary.files.iter().map(|f| f.rows_quarantined).sum();
    let faulty_rows: BTreeSet<_> = truth.iter().map(|(f, r, _)| (f.clone(), *r)).collect();
    assert_eq!(quarantined, faulty_rows.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_level_rules_reject_the_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let extracts = dir.path().join("extracts");
    generate(Scale::Tiny, 3, false, &extracts).unwrap();
    // F002: activities without its service_type column; F001: an empty CHIS file.
    std::fs::write(
        extracts.join("activities.csv"),
        "activity_code,name\nA1,Stay and play\n",
    )
    .unwrap();
    std::fs::write(extracts.join("chis.csv"), "").unwrap();
    let summary = run_nightly(&extracts, &dir.path().join("lake")).await;
    let by_source = |s: &str| {
        summary
            .files
            .iter()
            .find(|f| f.source == s)
            .unwrap()
            .clone()
    };
    assert_eq!(by_source("cc_activities").rule.as_deref(), Some("F002"));
    assert_eq!(by_source("chis").rule.as_deref(), Some("F001"));
    // The rest of the run went on: registrations loaded in full.
    let reg = by_source("cc_registrations");
    assert_eq!(reg.rows_loaded, reg.rows_read);
    assert!(reg.rows_read > 300);
    // Attendances reference activities that were never loaded: each is quarantined (E008),
    // which is more than half the file, so F005 rejects it rather than loading a sliver.
    assert_eq!(by_source("cc_attendances").rule.as_deref(), Some("F005"));
}
