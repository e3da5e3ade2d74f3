//! The lake: idempotent reruns, readable by an independent Parquet reader, no clear identifiers.

use std::collections::BTreeMap;

use earlystart::generate::{Scale, generate};
use earlystart::lake::{CURATED, Lake};
use earlystart::pipeline::FileStatus;

use crate::support::run_nightly;

async fn versions(lake: &Lake) -> BTreeMap<String, Option<u64>> {
    let mut out = BTreeMap::new();
    for t in [
        "registrations",
        "attendances",
        "chis",
        "hv_contacts",
        "asq3",
        "person_link",
        "centres",
    ] {
        out.insert(
            t.to_string(),
            lake.table(CURATED, t)
                .await
                .unwrap()
                .and_then(|t| t.version()),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_of_the_same_files_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let extracts = dir.path().join("extracts");
    generate(Scale::Tiny, 5, false, &extracts).unwrap();
    let lake_dir = dir.path().join("lake");
    let first = run_nightly(&extracts, &lake_dir).await;
    assert_eq!(first.exit_code(), 0);
    let lake = Lake::open(&lake_dir.to_string_lossy()).unwrap();
    let before = versions(&lake).await;

    let second = run_nightly(&extracts, &lake_dir).await;
    assert!(
        second
            .files
            .iter()
            .all(|f| matches!(f.status, FileStatus::Skipped | FileStatus::Missing)),
        "I001 for every file (optional extracts the generator does not write are missing): {:?}",
        second
            .files
            .iter()
            .map(|f| (&f.source, f.status))
            .collect::<Vec<_>>()
    );
    assert_eq!(versions(&lake).await, before, "no new table version");
    let rows: usize = lake
        .read(CURATED, "attendances")
        .await
        .unwrap()
        .unwrap()
        .iter()
        .map(|b| b.num_rows())
        .sum();
    let loaded = first
        .files
        .iter()
        .find(|f| f.source == "cc_attendances")
        .unwrap()
        .rows_loaded;
    assert_eq!(rows as u64, loaded, "no duplicate rows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_files_read_independently_and_hold_no_clear_identifiers() {
    let dir = tempfile::tempdir().unwrap();
    let extracts = dir.path().join("extracts");
    generate(Scale::Tiny, 9, false, &extracts).unwrap();
    let lake_dir = dir.path().join("lake");
    let summary = run_nightly(&extracts, &lake_dir).await;

    // Every NHS number and surname of the input must be absent from every Parquet file.
    // (Full postcodes are checked outside the public postcode directory and the site list:
    // those hold geography, not people.)
    let mut nhs_numbers = Vec::new();
    let mut postcodes = Vec::new();
    let mut r = csv::Reader::from_path(extracts.join("chis.csv")).unwrap();
    for rec in r.records() {
        let rec = rec.unwrap();
        nhs_numbers.push(rec[0].to_string());
        postcodes.push(rec[6].to_string());
    }
    // A site's postcode is public even where families live at the same postcode.
    let mut sites = csv::Reader::from_path(extracts.join("centres.csv")).unwrap();
    let site_postcodes: Vec<String> = sites.records().map(|r| r.unwrap()[5].to_string()).collect();
    postcodes.retain(|p| !site_postcodes.contains(p));
    let mut registrations = 0;
    for entry in walk(&lake_dir) {
        let bytes = std::fs::read(&entry).unwrap();
        if entry.extension().is_some_and(|e| e == "parquet") {
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                bytes::Bytes::from(bytes.clone()),
            )
            .unwrap()
            .build()
            .unwrap();
            let n: usize = reader.map(|b| b.unwrap().num_rows()).sum();
            if entry.to_string_lossy().contains("curated/registrations/") {
                registrations += n;
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        let path = entry.to_string_lossy();
        let geography = ["postcodes", "centres", "/reference/"]
            .iter()
            .any(|g| path.contains(g));
        for s in nhs_numbers
            .iter()
            .chain(postcodes.iter().filter(|_| !geography))
        {
            assert!(
                !text.contains(s.as_str()),
                "{} contains a clear identifier",
                entry.display()
            );
        }
    }
    let loaded = summary
        .files
        .iter()
        .find(|f| f.source == "cc_registrations")
        .unwrap()
        .rows_loaded;
    assert_eq!(registrations as u64, loaded);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p))
        } else {
            out.push(p)
        }
    }
    out
}

/// Copies every file under `from` to the same place under `to`.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    for file in walk(from) {
        let target = to.join(file.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, &target).unwrap();
    }
}

/// An analyst's project of one model, `sql/mine/daily.sql` with its sidecar, over the
/// shipped catalogue, with the attendances declared append-only by session date.
fn one_model_project(project: &std::path::Path, sql: &str, sidecar: &str) {
    std::fs::create_dir_all(project.join("sql/mine")).unwrap();
    std::fs::copy(
        crate::support::project().join("sql/catalogue.toml"),
        project.join("sql/catalogue.toml"),
    )
    .unwrap();
    std::fs::write(
        project.join("sql/metrics.toml"),
        "[incremental]\nappend_only = { attendances = \"session_date\" }\n",
    )
    .unwrap();
    std::fs::write(project.join("sql/mine/daily.sql"), sql).unwrap();
    std::fs::write(project.join("sql/mine/_models.toml"), sidecar).unwrap();
}

/// The next night's export: `rows` attendances on 31 March in a file of their own, taken from
/// existing rows (same people and centres) moved to that date with new ids.
fn send_a_day_of_attendances(extracts: &std::path::Path, rows: usize) {
    let all = std::fs::read_to_string(extracts.join("attendances.csv")).unwrap();
    let mut lines = all.lines();
    let header = lines.next().unwrap();
    let mut day = format!("{header}\n");
    for (i, line) in lines.take(rows).enumerate() {
        let mut f: Vec<&str> = line.split(',').collect();
        let id = format!("NEW{i:04}");
        f[0] = &id;
        f[6] = "2025-03-31";
        day.push_str(&f.join(","));
        day.push('\n');
    }
    std::fs::write(extracts.join("attendances_20250331.csv"), day).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_night_with_one_new_day_of_attendances_reads_only_that_file() {
    use earlystart::metrics::run::{MetricOptions, run};
    let dir = tempfile::tempdir().unwrap();
    let extracts = dir.path().join("extracts");
    generate(Scale::Tiny, 6, false, &extracts).unwrap();
    let lake_dir = dir.path().join("lake");
    run_nightly(&extracts, &lake_dir).await;
    let lake = Lake::open(&lake_dir.to_string_lossy()).unwrap();
    let project = crate::support::project();
    assert!(
        !run(&lake, &project, &MetricOptions::default())
            .await
            .unwrap()
            .up_to_date
    );
    let rows = |lake: Lake| async move {
        lake.read(CURATED, "attendances")
            .await
            .unwrap()
            .unwrap()
            .iter()
            .map(|b| b.num_rows())
            .sum::<usize>()
    };
    let before = rows(lake.clone()).await;
    let person_link = lake
        .table(CURATED, "person_link")
        .await
        .unwrap()
        .unwrap()
        .version();

    send_a_day_of_attendances(&extracts, 7);

    let night = run_nightly(&extracts, &lake_dir).await;
    let loaded: Vec<&str> = night
        .files
        .iter()
        .filter(|f| f.status == FileStatus::Loaded)
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(
        loaded,
        ["attendances_20250331.csv"],
        "only the new file is read"
    );
    assert_eq!(rows(lake.clone()).await, before + 7);
    // Attendances are not a linkage input: person_link keeps its version.
    assert_eq!(
        lake.table(CURATED, "person_link")
            .await
            .unwrap()
            .unwrap()
            .version(),
        person_link
    );
    // The metrics see the new version and rebuild only from the new day on; the tables
    // equal a full build's, and a second build finds nothing to do. Models that read no
    // attendances, directly or through a table that changed, are kept as they were.
    // The extract already had 31 March: models that add new days to their last build
    // (last_build in _models.toml) read their windows again, to the same rows.
    let incremental = assert_incremental_equals_full(
        &lake_dir,
        &dir.path().join("full"),
        &format!(
            "{}; with rows for days already loaded, so no model adds to its last build)",
            ONE_NEW_DAY.trim_end_matches(')')
        ),
    )
    .await;
    for kept in [
        "stg_hv_cohorts",
        "health_visiting",
        "social_care",
        "early_help",
    ] {
        assert!(
            incremental.kept.iter().any(|k| k == kept),
            "{kept}: {:?}",
            incremental.kept
        );
    }
    let built: Vec<&str> = incremental.models.iter().map(|m| m.0.as_str()).collect();
    // stg_periods reads attendances and is rebuilt, to the same rows: what reads it is not.
    for rebuilt in [
        "stg_periods",
        "stg_contact_days",
        "reach",
        "value_for_money",
        "metric_values",
    ] {
        assert!(built.contains(&rebuilt), "{rebuilt}: {built:?}");
    }
    assert!(
        run(&lake, &project, &MetricOptions::default())
            .await
            .unwrap()
            .up_to_date
    );
}

/// A night whose new file holds the first rows of a new latest day: the periods ending that
/// day become complete, so they are recomputed with the day's own figures, and the build
/// equals a full one. The day follows everything loaded, so the models that declare
/// last_build add it to what they counted before (contact units, who is already sustained).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_build_equals_a_full_build_when_a_new_day_completes_a_period() {
    use earlystart::metrics::run::{MetricOptions, run};
    let dir = tempfile::tempdir().unwrap();
    let extracts = dir.path().join("extracts");
    generate(Scale::Tiny, 8, false, &extracts).unwrap();
    let day = hold_back_the_last_day(&extracts);
    let lake_dir = dir.path().join("lake");
    run_nightly(&extracts, &lake_dir).await;
    let lake = Lake::open(&lake_dir.to_string_lossy()).unwrap();
    let project = crate::support::project();
    let first = run(&lake, &project, &MetricOptions::default())
        .await
        .unwrap();
    assert_eq!(first.scope, "full build (no earlier build to start from)");

    std::fs::write(extracts.join("attendances_20250331.csv"), day).unwrap();
    run_nightly(&extracts, &lake_dir).await;
    assert_incremental_equals_full(&lake_dir, &dir.path().join("full"), ONE_NEW_DAY).await;

    // A new health visiting snapshot (one contact fewer) is not an append: a late contact
    // can change an earlier cohort's figures, so the next build is a full one.
    let contacts = std::fs::read_to_string(extracts.join("hv_contacts.csv")).unwrap();
    let kept: Vec<&str> = contacts.lines().collect();
    std::fs::write(
        extracts.join("hv_contacts.csv"),
        kept[..kept.len() - 1].join("\n") + "\n",
    )
    .unwrap();
    run_nightly(&extracts, &lake_dir).await;
    let after = run(&lake, &project, &MetricOptions::default())
        .await
        .unwrap();
    assert_eq!(
        after.scope,
        "full build (curated/hv_contacts changed and is not declared append-only)"
    );
}

/// A night whose new file has a rejected row stays incremental: the quarantine only grows,
/// by that row dated by its own session date (DQ-02 counts it in the periods of that date),
/// and the build equals a full one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_day_with_a_rejected_row_is_still_an_incremental_build() {
    use earlystart::metrics::session::METRICS;
    let dir = tempfile::tempdir().unwrap();
    let (lake, day) = built_without_the_last_day_and_with_a_quarantine(dir.path()).await;

    sends_the_last_day_with_one_rejected_row(
        dir.path(),
        &without_person(&day, "2025-03-31"),
        "incremental build from 2025-03-31 (1 file(s) added to attendances from 2025-03-31; \
         1 file(s) added to quarantine from 2025-03-31)",
    )
    .await;
    // DQ-02 for the whole deployment in the quarter ending 31 March: both rejected rows.
    let rows =
        crate::support::rows_text(&lake.read(METRICS, "data_quality").await.unwrap().unwrap());
    let quarter: Vec<&String> = rows
        .iter()
        .filter(|r| r.starts_with("DQ-02|quarter|2025-01-01|2025-03-31|deployment|ALL|"))
        .collect();
    assert_eq!(quarter.len(), 1, "{rows:?}");
    assert!(quarter[0].contains("|all|all|2|"), "{quarter:?}");
}

/// A night whose new day also brings a rejected row dated 10 March: the quarantine's date
/// takes the recompute date back before days the last build counted, so no model may add
/// the days from then on to its last build (they would be counted twice), and the build
/// equals a full one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_row_dated_before_the_loaded_days_stops_adding_to_last_builds() {
    let dir = tempfile::tempdir().unwrap();
    let (_, day) = built_without_the_last_day_and_with_a_quarantine(dir.path()).await;

    let mut late: Vec<&str> = day.lines().nth(1).unwrap().split(',').collect();
    late[0] = "LATE0001";
    late[1] = "";
    late[6] = "2025-03-10";
    sends_the_last_day_with_one_rejected_row(
        dir.path(),
        &format!("{day}{}\n", late.join(",")),
        "incremental build from 2025-03-10 (1 file(s) added to attendances from 2025-03-31; \
         1 file(s) added to quarantine from 2025-03-10; with rows for days already loaded, so \
         no model adds to its last build)",
    )
    .await;
}

/// The night after [`built_without_the_last_day_and_with_a_quarantine`] in `dir`: sends
/// `day_file` as the last day's attendances, whose one rejected row goes to quarantine, and
/// checks that the build had `scope` and equals a full one.
async fn sends_the_last_day_with_one_rejected_row(
    dir: &std::path::Path,
    day_file: &str,
    scope: &str,
) {
    let (extracts, lake_dir) = (dir.join("extracts"), dir.join("lake"));
    std::fs::write(extracts.join("attendances_20250331.csv"), day_file).unwrap();
    let night = run_nightly(&extracts, &lake_dir).await;
    assert_eq!(night.rows_quarantined(), 1);
    assert_incremental_equals_full(&lake_dir, &dir.join("full"), scope).await;
}

/// A tiny generated extract in `dir/extracts` without its last day (returned, with the
/// header), whose first extract has a row without its person_id (rule E001) dated in the
/// last quarter, loaded into `dir/lake` (returned) and its metrics built: the quarantine
/// exists before the night that sends the last day (one new since the last build would make
/// a full build).
async fn built_without_the_last_day_and_with_a_quarantine(dir: &std::path::Path) -> (Lake, String) {
    let extracts = dir.join("extracts");
    generate(Scale::Tiny, 9, false, &extracts).unwrap();
    let day = hold_back_the_last_day(&extracts);
    let first = std::fs::read_to_string(extracts.join("attendances.csv")).unwrap();
    std::fs::write(
        extracts.join("attendances.csv"),
        without_person(&first, "2025-02"),
    )
    .unwrap();
    let lake_dir = dir.join("lake");
    run_nightly(&extracts, &lake_dir).await;
    let lake = Lake::open(&lake_dir.to_string_lossy()).unwrap();
    earlystart::metrics::run::run(
        &lake,
        &crate::support::project(),
        &earlystart::metrics::run::MetricOptions::default(),
    )
    .await
    .unwrap();
    (lake, day)
}

/// The extract `text` with the person_id (rule E001) of its first session dated `on…`
/// (a date's prefix) blanked.
fn without_person(text: &str, on: &str) -> String {
    let mut done = false;
    text.lines()
        .map(|line| {
            let mut f: Vec<&str> = line.split(',').collect();
            if !done && f.get(6).is_some_and(|d| d.starts_with(on)) {
                done = true;
                f[1] = "";
            }
            f.join(",") + "\n"
        })
        .collect()
}

/// Takes the attendances of the last day (31 March: the end of a quarter and a year) out
/// of the extract and returns them as a file of their own, with the header.
fn hold_back_the_last_day(extracts: &std::path::Path) -> String {
    let all = std::fs::read_to_string(extracts.join("attendances.csv")).unwrap();
    let mut lines = all.lines();
    let header = lines.next().unwrap();
    let date = header.split(',').position(|c| c == "session_date").unwrap();
    let (mut before, mut day) = (format!("{header}\n"), format!("{header}\n"));
    for line in lines {
        let target = if line.split(',').nth(date) == Some("2025-03-31") {
            &mut day
        } else {
            &mut before
        };
        target.push_str(line);
        target.push('\n');
    }
    assert!(
        day.lines().count() > 1,
        "the generated data has 31 March sessions"
    );
    std::fs::write(extracts.join("attendances.csv"), before).unwrap();
    day
}

/// In an incremental build the data tests read the new rows (the kept ones passed them
/// when they were built): a new row that breaks one stops the build, and nothing is
/// published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_row_that_fails_a_data_test_stops_an_incremental_build() {
    use earlystart::metrics::run::{MetricOptions, run};
    use earlystart::metrics::session::METRICS;
    let dir = tempfile::tempdir().unwrap();
    let extracts = dir.path().join("extracts");
    generate(Scale::Tiny, 11, false, &extracts).unwrap();
    let day = hold_back_the_last_day(&extracts);
    let lake_dir = dir.path().join("lake");
    run_nightly(&extracts, &lake_dir).await;
    let lake = Lake::open(&lake_dir.to_string_lossy()).unwrap();
    let project = dir.path().join("project");
    // Sessions per day, flagged "late" from 31 March on: the flag's accepted values are
    // "ok" only, which every day before passes.
    one_model_project(
        &project,
        "select session_date, count(*) as sessions, \
         case when session_date >= date '2025-03-31' then 'late' else 'ok' end as flag \
         from attendances where session_date >= recompute_from() group by session_date\n",
        "[daily]\nincremental = \"session_date\"\nunique_key = [\"session_date\"]\n\
         [daily.columns.flag]\ntests = [\"not_null\", { accepted_values = [\"ok\"] }]\n",
    );
    let first = run(&lake, &project, &MetricOptions::default())
        .await
        .unwrap();
    assert_eq!(first.tests_run, 3);
    let version = lake
        .table(METRICS, "daily")
        .await
        .unwrap()
        .unwrap()
        .version();

    std::fs::write(extracts.join("attendances_20250331.csv"), day).unwrap();
    run_nightly(&extracts, &lake_dir).await;
    let err = run(&lake, &project, &MetricOptions::default())
        .await
        .expect_err("the new day's rows are flagged late");
    let text = format!("{err:#}");
    assert!(text.contains("daily.sql"), "{text}");
    assert!(
        text.contains("flag: accepted_values failed, e.g. [\"late\"]"),
        "{text}"
    );
    assert_eq!(
        lake.table(METRICS, "daily")
            .await
            .unwrap()
            .unwrap()
            .version(),
        version,
        "nothing was published"
    );
}

/// A model that runs out of the memory pool runs once more (DataFusion's accounting of the
/// same query varies from run to run), and if it fails again the build stops with an error
/// that says so and names the setting; nothing is published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_runs_out_of_memory_runs_once_more_then_fails_naming_the_limit() {
    use earlystart::metrics::run::{MetricOptions, run};
    use earlystart::metrics::session::{Limits, METRICS, is_out_of_memory};
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(&dir.path().join("lake").to_string_lossy()).unwrap();
    let project = dir.path().join("project");
    // A hash join's build side cannot spill: a million keys do not fit in 4 MiB.
    one_model_project(
        &project,
        "with a as (select unnest(range(0, 1000000)) as value), \
         b as (select unnest(range(0, 1000000)) as value) \
         select a.value from a inner join b on a.value = b.value\n",
        "[daily]\n",
    );
    let options = MetricOptions {
        limits: Limits {
            memory_bytes: 4 << 20,
            ..Limits::metrics()
        },
        ..MetricOptions::default()
    };
    let err = run(&lake, &project, &options)
        .await
        .expect_err("the join needs more than 4 MiB");
    let text = format!("{err:#}");
    assert!(
        text.contains("daily.sql: the query failed (twice)"),
        "{text}"
    );
    assert!(text.contains("the session's pool of 4 MiB"), "{text}");
    assert!(text.contains("--memory-limit 16MiB"), "{text}");
    assert!(is_out_of_memory(&err));
    assert!(lake.table(METRICS, "daily").await.unwrap().is_none());
}

/// An incremental model's table takes each night's new rows as a file of their own (the
/// rows from the recompute date on are replaced, the rest left as written); at
/// `compact_at` files it is written whole again, in date order. Either way it holds what
/// a full build computes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_table_takes_new_files_until_it_is_compacted() {
    use earlystart::metrics::run::{MetricOptions, run};
    use earlystart::metrics::session::METRICS;
    let dir = tempfile::tempdir().unwrap();
    let extracts = dir.path().join("extracts");
    generate(Scale::Tiny, 12, false, &extracts).unwrap();
    let day = hold_back_the_last_day(&extracts);
    let lake_dir = dir.path().join("lake");
    run_nightly(&extracts, &lake_dir).await;
    let lake = Lake::open(&lake_dir.to_string_lossy()).unwrap();
    let project = dir.path().join("project");
    one_model_project(
        &project,
        "select session_date, count(*) as sessions from attendances \
         where session_date >= recompute_from() group by session_date\n",
        "[daily]\nincremental = \"session_date\"\nunique_key = [\"session_date\"]\n",
    );
    // Sessions per day as the lake's attendances say, and as the model's table says.
    let expected = || async {
        let session = earlystart::metrics::session::LakeSession::open(
            &lake,
            earlystart::metrics::session::Limits::metrics(),
            0.95,
        )
        .await
        .unwrap();
        let sql = |table: &str| {
            format!(
                "select cast(session_date as varchar) as d, count(*) from {table} \
                 group by session_date order by d"
            )
        };
        let mut want =
            crate::support::rows_text(&session.query(&sql("attendances")).await.unwrap());
        let got = crate::support::rows_text(
            &session
                .query("select cast(session_date as varchar) as d, sessions from daily order by d")
                .await
                .unwrap(),
        );
        want.sort();
        (want, got)
    };
    let opts = MetricOptions::default();
    run(&lake, &project, &opts).await.unwrap();
    let files = lake.file_count(METRICS, "daily").await.unwrap().unwrap();

    std::fs::write(extracts.join("attendances_20250331.csv"), &day).unwrap();
    run_nightly(&extracts, &lake_dir).await;
    let second = run(&lake, &project, &opts).await.unwrap();
    assert!(
        second
            .scope
            .starts_with("incremental build from 2025-03-31"),
        "{}",
        second.scope
    );
    // The earlier days' files stay as they were; 31 March is a file of its own.
    assert_eq!(
        lake.file_count(METRICS, "daily").await.unwrap(),
        Some(files + 1)
    );
    let (want, got) = expected().await;
    assert_eq!(got, want);

    // More sessions on 31 March: the day's file is replaced, and at the limit the table
    // is written whole again.
    let mut lines = day.lines();
    let header = lines.next().unwrap();
    let late: String = lines
        .take(3)
        .map(|l| format!("{}\n", l.replacen(',', "X,", 1)))
        .collect();
    std::fs::write(
        extracts.join("attendances_20250331_late.csv"),
        format!("{header}\n{late}"),
    )
    .unwrap();
    run_nightly(&extracts, &lake_dir).await;
    let compact = MetricOptions {
        compact_at: files + 1,
        ..MetricOptions::default()
    };
    let third = run(&lake, &project, &compact).await.unwrap();
    assert!(
        third.scope.starts_with("incremental build from 2025-03-31"),
        "{}",
        third.scope
    );
    assert_eq!(lake.file_count(METRICS, "daily").await.unwrap(), Some(1));
    let (want, got) = expected().await;
    assert_eq!(got, want);
}

/// An analyst edits one model: that model is rebuilt (a full build: the SQL changed), the
/// models that read nothing it changed are kept, and changing it back rebuilds it again
/// rather than taking the first build's key for "up to date".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_model_is_rebuilt_and_the_models_it_does_not_feed_are_kept() {
    use earlystart::metrics::run::{MetricOptions, run};
    use earlystart::metrics::session::METRICS;
    let dir = tempfile::tempdir().unwrap();
    let extracts = dir.path().join("extracts");
    generate(Scale::Tiny, 10, false, &extracts).unwrap();
    let lake_dir = dir.path().join("lake");
    run_nightly(&extracts, &lake_dir).await;
    let lake = Lake::open(&lake_dir.to_string_lossy()).unwrap();
    let project = dir.path().join("project");
    copy_tree(&crate::support::project().join("sql"), &project.join("sql"));
    let opts = MetricOptions::default();
    let first = run(&lake, &project, &opts).await.unwrap();
    assert!(first.kept.is_empty(), "{:?}", first.kept);
    let version = |name: &'static str| {
        let lake = lake.clone();
        async move { lake.table(METRICS, name).await.unwrap().unwrap().version() }
    };
    let health_visiting = version("health_visiting").await;

    let sql = project.join("sql/metrics/early_help.sql");
    let original = std::fs::read_to_string(&sql).unwrap();
    std::fs::write(&sql, format!("-- reviewed\n{original}")).unwrap();
    let edited = run(&lake, &project, &opts).await.unwrap();
    assert_eq!(
        edited.scope,
        "full build (the SQL, its declarations or its parameters changed)"
    );
    let built: Vec<&str> = edited.models.iter().map(|m| m.0.as_str()).collect();
    // The comment leaves early_help's rows as they were (a small table, digested by
    // content), so only what reads the run id is built besides it.
    assert_eq!(built, ["early_help", "metric_values", "lot_kpis"]);
    assert_eq!(edited.kept.len(), first.models.len() - 3);
    assert_eq!(version("health_visiting").await, health_visiting);

    std::fs::write(&sql, original).unwrap();
    let reverted = run(&lake, &project, &opts).await.unwrap();
    assert!(!reverted.up_to_date, "the tables hold the edited build");
    let built: Vec<&str> = reverted.models.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(built, ["early_help", "metric_values", "lot_kpis"]);
    assert!(run(&lake, &project, &opts).await.unwrap().up_to_date);
}

/// An analyst's model that declares `incremental` but does not filter on
/// `recompute_from()` would put new rows beside kept ones of the same dates: the build
/// stops with an error naming the file and the rule, and publishes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_model_that_computes_earlier_rows_is_refused() {
    use earlystart::metrics::run::{MetricOptions, run};
    use earlystart::metrics::session::METRICS;
    let dir = tempfile::tempdir().unwrap();
    let extracts = dir.path().join("extracts");
    generate(Scale::Tiny, 9, false, &extracts).unwrap();
    let lake_dir = dir.path().join("lake");
    run_nightly(&extracts, &lake_dir).await;
    let lake = Lake::open(&lake_dir.to_string_lossy()).unwrap();

    // A project of one model: sessions per day, declared incremental, computed for every day.
    let project = dir.path().join("project");
    one_model_project(
        &project,
        "select session_date, count(*) as sessions from attendances group by session_date\n",
        "[daily]\nincremental = \"session_date\"\n",
    );
    let first = run(&lake, &project, &MetricOptions::default())
        .await
        .unwrap();
    assert_eq!(first.scope, "full build (no earlier build to start from)");
    let version = lake
        .table(METRICS, "daily")
        .await
        .unwrap()
        .unwrap()
        .version();

    send_a_day_of_attendances(&extracts, 3);
    run_nightly(&extracts, &lake_dir).await;
    let err = run(&lake, &project, &MetricOptions::default())
        .await
        .expect_err("the model computes rows before the recompute date");
    let text = format!("{err:#}");
    assert!(text.contains("daily.sql"), "{text}");
    assert!(
        text.contains("declares incremental = \"session_date\" but computed"),
        "{text}"
    );
    assert!(text.contains("recompute date 2025-03-31"), "{text}");
    assert_eq!(
        lake.table(METRICS, "daily")
            .await
            .unwrap()
            .unwrap()
            .version(),
        version,
        "nothing was published"
    );
}

/// The scope of a build after a night that added one file of 31 March attendances.
const ONE_NEW_DAY: &str =
    "incremental build from 2025-03-31 (1 file(s) added to attendances from 2025-03-31)";

/// Builds the metrics of the lake at `lake_dir`, expecting an incremental build of `scope`,
/// and those of a copy taken before (at `copy`) from scratch; every metric table must hold
/// the same rows. Left out: the build record, and `run_id` (kept rows name the build that
/// computed them).
async fn assert_incremental_equals_full(
    lake_dir: &std::path::Path,
    copy: &std::path::Path,
    scope: &str,
) -> earlystart::metrics::run::MetricRun {
    use earlystart::metrics::run::{MetricOptions, run};
    use earlystart::metrics::session::{METRICS, list_tables};
    copy_tree(lake_dir, copy);
    let lake = Lake::open(&lake_dir.to_string_lossy()).unwrap();
    let full = Lake::open(&copy.to_string_lossy()).unwrap();
    let incremental = run(&lake, &crate::support::project(), &MetricOptions::default())
        .await
        .unwrap();
    assert_eq!(incremental.scope, scope);
    let forced = MetricOptions {
        force: true,
        ..Default::default()
    };
    let built = run(&full, &crate::support::project(), &forced)
        .await
        .unwrap();
    assert_eq!(built.scope, "full build (--force)");
    let tables = list_tables(&lake, METRICS).await.unwrap();
    assert!(tables.len() > 30, "{tables:?}");
    for table in tables
        .iter()
        .filter(|t| !["metric_run", "metric_build"].contains(&t.as_str()))
    {
        let rows = |lake: Lake| {
            let table = table.clone();
            async move {
                let batches = lake.read(METRICS, &table).await.unwrap().unwrap();
                let batches: Vec<_> = batches
                    .into_iter()
                    .map(|b| {
                        let keep: Vec<usize> = (0..b.num_columns())
                            .filter(|i| b.schema().field(*i).name() != "run_id")
                            .collect();
                        b.project(&keep).unwrap()
                    })
                    .collect();
                let mut rows = crate::support::rows_text(&batches);
                rows.sort();
                rows
            }
        };
        let (a, b) = (rows(lake.clone()).await, rows(full.clone()).await);
        assert_eq!(
            a, b,
            "metrics/{table}: incremental build differs from a full one"
        );
    }
    incremental
}

/// A lake whose quarantine was written before rows carried their centre and date (an
/// earlier release) still plans DQ-02: the session shows the two columns as nulls until a
/// run appends rows with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_quarantine_reads_with_null_centre_and_date() {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Schema};
    use earlystart::metrics::session::{LakeSession, Limits};

    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(&dir.path().to_string_lossy()).unwrap();
    let current = earlystart::pipeline::records::issue_schema();
    let older = Arc::new(Schema::new(
        current
            .fields()
            .iter()
            .filter(|f| !["centre_id", "record_date"].contains(&f.name().as_str()))
            .cloned()
            .collect::<Vec<_>>(),
    ));
    let columns: Vec<ArrayRef> = older
        .fields()
        .iter()
        .map(|f| -> ArrayRef {
            match f.data_type() {
                DataType::Int64 => Arc::new(Int64Array::from(vec![Some(7)])),
                _ => Arc::new(StringArray::from(vec![Some("x")])),
            }
        })
        .collect();
    let batch = RecordBatch::try_new(older.clone(), columns).unwrap();
    lake.replace(
        earlystart::lake::OPS,
        "quarantine",
        older,
        vec![batch],
        "old-release",
        Default::default(),
    )
    .await
    .unwrap();
    let session = LakeSession::open(&lake, Limits::default(), 0.95)
        .await
        .unwrap();
    let rows = session
        .query(
            "select row_number, count(centre_id) as c, count(record_date) as d \
             from quarantine group by row_number",
        )
        .await
        .unwrap();
    assert_eq!(crate::support::rows_text(&rows), ["7|0|0"]);
}
