//! Crash consistency: the store fails at every write of a run in turn; after each failure
//! every table is readable and holds whole files only, and a rerun equals a clean run.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use async_trait::async_trait;
use earlystart::generate::{Scale, generate};
use earlystart::lake::{CURATED, Lake, OPS};
use futures::stream::BoxStream;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};

/// An in-memory store whose `fail_at`-th write (1-based; 0 = never) fails.
#[derive(Debug, Default)]
struct FailingStore {
    inner: InMemory,
    writes: AtomicUsize,
    fail_at: AtomicUsize,
}

impl fmt::Display for FailingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FailingStore")
    }
}

impl FailingStore {
    fn tick(&self, location: &Path) -> object_store::Result<()> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fail_at.load(Ordering::SeqCst) {
            return Err(object_store::Error::Generic {
                store: "FailingStore",
                source: format!("injected failure at write {n} ({location})").into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl ObjectStore for FailingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.tick(location)?;
        self.inner.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.tick(location)?;
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.tick(to)?;
        self.inner.copy_opts(from, to, options).await
    }
    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.tick(to)?;
        self.inner.rename_opts(from, to, options).await
    }
}

const TABLES: &[(&str, &str)] = &[
    (CURATED, "postcodes"),
    (CURATED, "iod"),
    (CURATED, "centres"),
    (CURATED, "reach_areas"),
    (CURATED, "activities"),
    (CURATED, "registrations"),
    (CURATED, "attendances"),
    (CURATED, "chis"),
    (CURATED, "hv_contacts"),
    (CURATED, "asq3"),
    (CURATED, "person_link"),
    (OPS, "quarantine"),
];

fn rows(batches: &[RecordBatch], skip: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let cols: Vec<usize> = (0..b.num_columns())
            .filter(|i| !skip.contains(&b.schema().field(*i).name().as_str()))
            .collect();
        let fmts: Vec<ArrayFormatter> = cols
            .iter()
            .map(|i| {
                ArrayFormatter::try_new(b.column(*i).as_ref(), &FormatOptions::default()).unwrap()
            })
            .collect();
        for r in 0..b.num_rows() {
            out.push(
                fmts.iter()
                    .map(|f| f.value(r).to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            );
        }
    }
    out.sort();
    out
}

/// Sorted rows of every table (run ids and timestamps left out), and rows per source file.
pub(crate) async fn contents(
    lake: &Lake,
) -> (
    BTreeMap<String, Vec<String>>,
    BTreeMap<(String, String), usize>,
) {
    let mut all = BTreeMap::new();
    let mut per_file = BTreeMap::new();
    for (area, name) in TABLES {
        let Some(batches) = lake
            .read(area, name)
            .await
            .expect("every table stays readable")
        else {
            continue;
        };
        all.insert(
            format!("{area}/{name}"),
            rows(&batches, &["run_id", "ingested_at"]),
        );
        for b in &batches {
            if let Some(col) = b.column_by_name("_file_sha256") {
                let f = ArrayFormatter::try_new(col.as_ref(), &FormatOptions::default()).unwrap();
                for r in 0..b.num_rows() {
                    *per_file
                        .entry((name.to_string(), f.value(r).to_string()))
                        .or_default() += 1;
                }
            }
        }
    }
    (all, per_file)
}

async fn run(store: Arc<FailingStore>, extracts: &std::path::Path) -> anyhow::Result<()> {
    let pipeline = earlystart::config::load(&crate::support::project(), "nightly").unwrap();
    let opts = earlystart::pipeline::RunOptions {
        project: crate::support::project(),
        extracts: Some(extracts.to_path_buf()),
        lake: Lake::with_store(url::Url::parse("memory:///lake/").unwrap(), store),
        as_at: Some(earlystart::generate::AS_AT),
        pseudonymiser: earlystart::identity::Pseudonymiser::demo(),
        trigger: "test".into(),
        progress: false,
    };
    earlystart::pipeline::run(&pipeline, &opts)
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_at_any_write_leaves_whole_versions_and_a_rerun_completes() {
    let dir = tempfile::tempdir().unwrap();
    let extracts = dir.path().join("extracts");
    generate(Scale::Tiny, 11, true, &extracts).unwrap();

    let clean_store = Arc::new(FailingStore::default());
    run(clean_store.clone(), &extracts).await.unwrap();
    let writes = clean_store.writes.load(Ordering::SeqCst);
    let clean_lake = Lake::with_store(url::Url::parse("memory:///lake/").unwrap(), clean_store);
    let (clean, clean_files) = contents(&clean_lake).await;
    assert!(writes > 40, "a run makes many writes ({writes})");

    // Every write point when the suite runs with EARLYSTART_CRASH_ALL=1; otherwise a seeded
    // spread of them (every 3rd, offset by the seed) to keep the default suite quick.
    let step = if std::env::var_os("EARLYSTART_CRASH_ALL").is_some() {
        1
    } else {
        3
    };
    for k in (1 + writes % step..=writes).step_by(step) {
        let store = Arc::new(FailingStore::default());
        store.fail_at.store(k, Ordering::SeqCst);
        let failed = run(store.clone(), &extracts).await;
        assert!(
            failed.is_err(),
            "write {k} of {writes} failed but the run reported success"
        );

        let lake = Lake::with_store(url::Url::parse("memory:///lake/").unwrap(), store.clone());
        let (_, files) = contents(&lake).await;
        for (key, n) in &files {
            assert_eq!(
                Some(n),
                clean_files.get(key),
                "after a failure at write {k}, {key:?} holds part of a file"
            );
        }

        store.fail_at.store(0, Ordering::SeqCst);
        run(store.clone(), &extracts)
            .await
            .unwrap_or_else(|e| panic!("rerun after a failure at write {k}: {e:#}"));
        let (after, _) = contents(&lake).await;
        for (table, want) in &clean {
            let got = after.get(table).map(Vec::as_slice).unwrap_or_default();
            let extra: Vec<_> = got.iter().filter(|r| !want.contains(r)).take(3).collect();
            let missing: Vec<_> = want.iter().filter(|r| !got.contains(r)).take(3).collect();
            assert!(
                got == want.as_slice(),
                "rerun after a failure at write {k}: {table} has {} rows, a clean run {}; extra {extra:?}; missing {missing:?}",
                got.len(),
                want.len()
            );
        }
    }
}
