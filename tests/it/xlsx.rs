//! Reference workbooks: an ONS-style population sheet (title rows above the header) read
//! through calamine, and a corrupt workbook rejected alone.

use std::path::Path;

use arrow::array::AsArray;
use earlystart::lake::{CURATED, Lake};
use rust_xlsxwriter::Workbook;

const PIPELINE: &str = r#"
[[source]]
name = "population"
canonical = "lsoa_population"
path = "population.xlsx"
sheet = "Mid-2022 LSOA 2021"
header_row = 4
lsoa_vintage = 2021
[source.columns]
lsoa_code = "LSOA 2021 Code"
age_0 = "F0"
age_1 = "F1"
age_2 = "F2"
age_3 = "F3"
age_4 = "F4"

[[source]]
name = "broken"
canonical = "lsoa_population"
path = "broken.xlsx"
"#;

fn workbook(path: &Path) {
    let mut wb = Workbook::new();
    wb.add_worksheet()
        .set_name("Contents")
        .unwrap()
        .write_string(0, 0, "Contents")
        .unwrap();
    let ws = wb.add_worksheet().set_name("Mid-2022 LSOA 2021").unwrap();
    ws.write_string(0, 0, "Lower layer Super Output Area population estimates")
        .unwrap();
    ws.write_string(1, 0, "Source: synthetic").unwrap();
    for (c, h) in [
        "LAD 2021 Code",
        "LSOA 2021 Code",
        "Total",
        "F0",
        "F1",
        "F2",
        "F3",
        "F4",
    ]
    .iter()
    .enumerate()
    {
        ws.write_string(3, c as u16, *h).unwrap();
    }
    for (r, (code, ages)) in [
        ("E01000001", [10, 12, 11, 9, 8]),
        ("E01000002", [3, 4, 5, 6, 7]),
    ]
    .iter()
    .enumerate()
    {
        let row = 4 + r as u32;
        ws.write_string(row, 0, "E06000016").unwrap();
        ws.write_string(row, 1, *code).unwrap();
        ws.write_number(row, 2, 1500.0).unwrap();
        for (i, a) in ages.iter().enumerate() {
            ws.write_number(row, 3 + i as u16, f64::from(*a)).unwrap();
        }
    }
    wb.save(path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn population_workbook_loads_and_a_corrupt_one_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    std::fs::create_dir_all(project.join("pipelines")).unwrap();
    std::fs::write(project.join("pipelines/ons.toml"), PIPELINE).unwrap();
    let extracts = dir.path().join("extracts");
    std::fs::create_dir_all(&extracts).unwrap();
    workbook(&extracts.join("population.xlsx"));
    std::fs::write(
        extracts.join("broken.xlsx"),
        b"PK\x03\x04 this is not a workbook",
    )
    .unwrap();

    // Reference tables come from the repository; the pipeline from the temporary project.
    let pipeline = earlystart::config::load(&project, "ons").unwrap();
    let lake = Lake::open(&dir.path().join("lake").to_string_lossy()).unwrap();
    let opts = earlystart::pipeline::RunOptions {
        project: crate::support::project(),
        extracts: Some(extracts),
        lake: lake.clone(),
        as_at: Some(earlystart::generate::AS_AT),
        pseudonymiser: earlystart::identity::Pseudonymiser::demo(),
        trigger: "test".into(),
        progress: false,
    };
    let summary = earlystart::pipeline::run(&pipeline, &opts).await.unwrap();
    let broken = summary.files.iter().find(|f| f.source == "broken").unwrap();
    assert_eq!(broken.rule.as_deref(), Some("F001"), "{:?}", broken.message);

    let batches = lake
        .read(CURATED, "lsoa_population")
        .await
        .unwrap()
        .unwrap();
    let b = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    assert_eq!(b.num_rows(), 2);
    let code = arrow::compute::cast(
        b.column_by_name("lsoa_code").unwrap(),
        &arrow::datatypes::DataType::Utf8,
    )
    .unwrap();
    let total = b
        .column_by_name("population_0_4")
        .unwrap()
        .as_primitive::<arrow::datatypes::Int64Type>();
    let mut got: Vec<(String, i64)> = (0..2)
        .map(|i| (code.as_string::<i32>().value(i).to_string(), total.value(i)))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![("E01000001".to_string(), 50), ("E01000002".to_string(), 25)]
    );
}
