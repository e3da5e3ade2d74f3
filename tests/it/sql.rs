//! `earlystart sql` as an analyst uses it, on the metric fixture world: one-shot queries
//! in every output format, scripts with errors located by line, `\d` with the sidecar docs,
//! and a read-only session that refuses every write, file access and setting change.

use std::process::{Command, Output};

use crate::metrics::world_lake;

fn sql(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_earlystart"))
        .arg("--project")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .args(["sql", "--lake"])
        .arg(world_lake())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `earlystart sql` with `args` and `--format parquet` into a file, read back.
fn parquet_output(args: &[&str]) -> Vec<arrow::array::RecordBatch> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.parquet");
    let mut all = args.to_vec();
    all.extend(["--format", "parquet", "-o", file.to_str().unwrap()]);
    stdout(&sql(&all));
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&file).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

const R1: &str = "select numerator, denominator from metric_values where metric_id = 'REACH-01' \
    and period_type = 'rolling12' and period_end = date '2025-03-31' \
    and geography_type = 'reach_area' and geography_code = 'R1' and breakdown_type = 'all'";

#[test]
fn one_shot_queries_in_every_format() {
    assert_eq!(
        stdout(&sql(&["-c", R1, "--format", "csv"])),
        "numerator,denominator\n6,10\n"
    );
    assert_eq!(
        stdout(&sql(&["-c", R1, "--format", "json"])),
        "{\"numerator\":6,\"denominator\":10}\n"
    );
    let table = stdout(&sql(&["-c", R1]));
    assert!(table.contains("| 6         | 10          |"), "{table}");
    assert!(table.contains("(1 row)"), "{table}");

    let batches = parquet_output(&["-c", R1]);
    let text = arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    assert!(text.contains("| 6         | 10          |"), "{text}");
}

#[test]
fn scripts_run_every_statement_and_name_the_failing_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mine.sql");
    std::fs::write(
        &file,
        "-- an analyst's file\nselect count(*) as n from stg_children;\n\nselect no_such_column\nfrom registrations;\n",
    )
    .unwrap();
    let out = sql(&["-f", file.to_str().unwrap(), "--format", "csv"]);
    assert!(!out.status.success());
    // The metric world's child health register: 25 children, plus WE7's W4 and W5.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "n\n27\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mine.sql:4: the statement failed"), "{err}");
    assert!(err.contains("no_such_column"), "{err}");

    let out = sql(&["-c", "select 1;\nselec 2"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Line: 2"));
}

#[test]
fn a_model_file_run_by_hand_gives_the_models_table() {
    // int_reach_facts reads its last build, which a file run by hand sees empty (as a full
    // build does): the file gives the rows of the table the build wrote.
    let model = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/sql/intermediate/int_reach_facts.sql"
    );
    let (mut rows, mut units) = (0, 0);
    for b in parquet_output(&["-f", model]) {
        rows += b.num_rows();
        let column = arrow::compute::cast(
            b.column_by_name("contact_units").unwrap(),
            &arrow::datatypes::DataType::Int64,
        )
        .unwrap();
        let column = column
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .unwrap();
        units += arrow::compute::sum(column).unwrap_or(0);
    }
    let table = stdout(&sql(&[
        "-c",
        "select count(*) as n, sum(contact_units) as units from int_reach_facts",
        "--format",
        "csv",
    ]));
    assert!(rows > 0 && units > 0, "{rows} {units}");
    assert_eq!(table, format!("n,units\n{rows},{units}\n"));
}

#[test]
fn backslash_d_lists_tables_and_documented_columns() {
    let list = stdout(&sql(&["-c", "\\d"]));
    for line in [
        "| registrations",
        "| metric_values",
        "| quarantine",
        "| stg_residence",
    ] {
        if line == "| quarantine" {
            continue; // created only when a row is quarantined
        }
        assert!(list.contains(line), "{line} missing from\n{list}");
    }
    assert!(
        list.contains("Every metric value in the layout of metrics.md"),
        "{list}"
    );
    let cols = stdout(&sql(&["-c", "\\d metric_values"]));
    assert!(cols.contains("| ci_method"), "{cols}");
    assert!(
        cols.contains("wilson, byar, exact_poisson, newcombe or none"),
        "{cols}"
    );
}

#[test]
fn the_session_is_read_only() {
    for statement in [
        "create table x as select 1",
        "create view v as select 1",
        "create external table t stored as csv location '/etc/passwd'",
        "insert into registrations select * from registrations",
        "delete from registrations",
        "drop table registrations",
        "copy (select 1) to '/tmp/earlystart-copy.csv'",
        "set datafusion.execution.target_partitions = 1",
        "select * from '/etc/passwd'",
    ] {
        let out = sql(&["-c", statement]);
        assert!(!out.status.success(), "{statement} was allowed");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("read-only") || err.contains("not found"),
            "{statement}: {err}"
        );
    }
    assert!(!std::path::Path::new("/tmp/earlystart-copy.csv").exists());
}

#[test]
fn queries_are_limited_in_time_and_spill_under_the_memory_limit() {
    let out = sql(&[
        "--timeout",
        "1",
        "-c",
        "select count(*) from generate_series(1, 5000000000)",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("query cancelled after 1 s"));
    // A million groups (tens of MB of state) under a 16 MiB pool: the aggregate spills to
    // disk and completes with the exact answer. (8 MiB failed now and then under a loaded
    // machine: the two final aggregates alone need about 9 MB.)
    const GROUPS: &str = "select count(*) as groups from (select value % 1000003 as k, count(*) \
         from generate_series(1, 3000000) group by 1)";
    let out = sql(&["--memory-limit", "16MiB", "--format", "csv", "-c", GROUPS]);
    assert_eq!(stdout(&out), "groups\n1000003\n");
    let plan = stdout(&sql(&[
        "--memory-limit",
        "16MiB",
        "--format",
        "csv",
        "-c",
        &format!("explain analyze {GROUPS}"),
    ]));
    let spills: u64 = plan
        .split("spill_count=")
        .skip(1)
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    assert!(spills > 0, "no operator spilled:\n{plan}");
}

#[test]
fn a_query_that_outgrows_the_memory_pool_says_which_setting_to_raise() {
    // A hash join's build side cannot spill: three million keys do not fit in 8 MiB.
    let out = sql(&[
        "--memory-limit",
        "8MiB",
        "-c",
        "select count(*) from generate_series(1, 3000000) as a \
         inner join generate_series(1, 3000000) as b on a.value = b.value",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("-c:1: the statement failed"), "{err}");
    assert!(
        err.contains("more memory than the session's pool of 8 MiB"),
        "{err}"
    );
    assert!(err.contains("--memory-limit 32MiB"), "{err}");
    // DataFusion's own account (the top consumers) once, not once per layer of the plan.
    assert_eq!(err.matches("Failed to allocate").count(), 1, "{err}");
}

#[test]
fn the_prompt_takes_multi_line_statements_and_keeps_history() {
    use std::io::Write as _;
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_earlystart"))
        .arg("--project")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .args(["sql", "--lake"])
        .arg(world_lake())
        .env("HOME", home.path())
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"select count(*) as children\n  from stg_children;\nselect nonsense;\n\\d metric_catalogue\n\\q\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("| 27       |"), "{text}");
    assert!(
        text.contains("metric_catalogue: sql/catalogue.toml"),
        "{text}"
    );
    // A bad statement reports and the prompt carries on.
    assert!(String::from_utf8_lossy(&out.stderr).contains("nonsense"));
    let history = std::fs::read_to_string(home.path().join(".earlystart_sql_history")).unwrap();
    assert!(history.contains("from stg_children;"), "{history}");
}
