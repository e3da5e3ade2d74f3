//! The `sql/` project, dbt-style: every `*.sql` file is a model whose table name is its
//! file stem and whose layer is its folder (`staging` → `intermediate` → `metrics` →
//! `marts`); each folder's
//! `_models.toml` documents and tests the models' columns. The run order is derived from
//! the tables each file reads, so adding a file needs no registration anywhere.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use datafusion::prelude::SessionContext;
use serde::Deserialize;

/// One SQL file.
#[derive(Debug, Clone)]
pub struct Model {
    /// Table name (file stem).
    pub name: String,
    /// Folder under `sql/` (`staging`, `metrics`, `marts`, or an analyst's own).
    pub layer: String,
    /// Path of the file, for error messages.
    pub path: PathBuf,
    /// The query.
    pub sql: String,
    /// Tables the query reads (CTE names excluded), lower case.
    pub reads: BTreeSet<String>,
    /// Documentation and tests from the folder's `_models.toml`.
    pub doc: ModelDoc,
}

/// A model's entry in `_models.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelDoc {
    /// What one row is and what the table is for.
    #[serde(default)]
    pub description: String,
    /// Columns that together identify a row (tested unique).
    #[serde(default)]
    pub unique_key: Vec<String>,
    /// Column docs and tests, in display order.
    #[serde(default)]
    pub columns: toml::Table,
    /// A date column by which an incremental build may recompute only the recent rows: the
    /// model's SQL computes only rows dated on or after `recompute_from()`, and no earlier
    /// row may depend on later data (see [`super::incremental`]). Unset: always rebuilt
    /// whole.
    #[serde(default)]
    pub incremental: Option<String>,
    /// With `incremental`: a new row whose `unique_key` is among the kept rows is dropped,
    /// so the kept row stands. For models that record when something first happened (one
    /// row per key, dated by its first occurrence): a key first seen before the recompute
    /// date keeps that date whatever happens later, and the SQL need only look at the days
    /// that can make a new first occurrence.
    #[serde(default)]
    pub keep_earlier: bool,
    /// With `incremental`: columns of the model's own table, each with its Arrow type
    /// (`"Utf8"`, `"Date32"`, `"Int64"` …), that its SQL reads as the table [`LAST_BUILD`].
    /// It holds the rows the last build left when this build only adds days after
    /// everything that build read (the usual night; see
    /// [`super::incremental::Scope::From`]), and no rows in any other build, so the SQL
    /// must give the same rows either way. It lets a model carry state from night to night
    /// instead of reading its whole window again: who is already sustained, the contact
    /// units counted so far.
    #[serde(default)]
    pub last_build: BTreeMap<String, String>,
}

/// The table under which a model that declares `last_build` reads its own last build.
pub const LAST_BUILD: &str = "last_build";

/// One column's documentation and tests.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnDoc {
    /// What the column holds.
    #[serde(default)]
    pub description: String,
    /// Data tests on the column.
    #[serde(default)]
    pub tests: Vec<ColumnTest>,
}

/// A data test on a column, as dbt names them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ColumnTest {
    /// `"unique"` or `"not_null"`.
    Named(String),
    /// `{ accepted_values = [..] }`.
    AcceptedValues {
        /// The only values allowed (nulls are allowed unless `not_null` is also set).
        accepted_values: Vec<String>,
    },
    /// `{ relationships = "table.column" }`: every non-null value exists there.
    Relationships {
        /// `table.column` the value must exist in.
        relationships: String,
    },
}

impl ModelDoc {
    /// The schema of [`LAST_BUILD`] for this model, `None` when it declares none.
    pub fn last_build_schema(&self) -> Result<Option<arrow::datatypes::SchemaRef>> {
        if self.last_build.is_empty() {
            return Ok(None);
        }
        let fields = self
            .last_build
            .iter()
            .map(|(name, ty)| {
                let ty: arrow::datatypes::DataType = ty.parse().map_err(|e| {
                    anyhow::anyhow!(
                        "last_build column {name:?}: {ty:?} is not an Arrow type ({e}); \
                         write e.g. \"Utf8\", \"Date32\" or \"Int64\""
                    )
                })?;
                Ok(arrow::datatypes::Field::new(name, ty, true))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(std::sync::Arc::new(arrow::datatypes::Schema::new(
            fields,
        ))))
    }

    /// The documented columns in file order.
    pub fn column_docs(&self) -> Result<Vec<(String, ColumnDoc)>> {
        self.columns
            .iter()
            .map(|(name, v)| {
                let doc: ColumnDoc = v
                    .clone()
                    .try_into()
                    .with_context(|| format!("column {name:?}"))?;
                Ok((name.clone(), doc))
            })
            .collect()
    }
}

/// The whole project, in run order.
#[derive(Debug, Clone)]
pub struct Project {
    /// Models in an order where every model comes after the models it reads.
    pub models: Vec<Model>,
}

/// The layers shipped with earlystart, in the order they are listed; analysts' own folders
/// sort after them.
const LAYERS: &[&str] = &["staging", "intermediate", "metrics", "marts"];

impl Project {
    /// Loads every model under `dir`, reads its sidecar docs and orders the models by what
    /// they read. `ctx` parses the SQL (DataFusion's dialect, so what runs is what parses).
    pub fn load(dir: &Path, ctx: &SessionContext) -> Result<Self> {
        let mut models = Vec::new();
        let mut docs: HashMap<PathBuf, toml::Table> = HashMap::new();
        for path in crate::config::walk_files(dir, "sql") {
            let folder = path.parent().unwrap_or(dir).to_path_buf();
            if !docs.contains_key(&folder) {
                docs.insert(folder.clone(), read_sidecar(&folder.join("_models.toml"))?);
            }
            let name = stem(&path);
            let layer = folder
                .strip_prefix(dir)
                .unwrap_or(&folder)
                .to_string_lossy()
                .replace('\\', "/");
            let sql = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let reads = tables_read(ctx, &sql)
                .with_context(|| format!("{}: not a valid DataFusion SELECT", path.display()))?;
            let doc = match docs[&folder].get(&name) {
                Some(v) => v.clone().try_into().with_context(|| {
                    format!("{}: entry [{name}]", folder.join("_models.toml").display())
                })?,
                None => ModelDoc::default(),
            };
            if doc.keep_earlier && (doc.incremental.is_none() || doc.unique_key.is_empty()) {
                bail!(
                    "{}: [{name}] sets keep_earlier, which needs incremental and unique_key \
                     (the rows kept are matched to new ones by their unique key)",
                    folder.join("_models.toml").display()
                );
            }
            let sidecar = || folder.join("_models.toml").display().to_string();
            let mut reads = reads;
            if reads.contains(LAST_BUILD) {
                if doc.last_build.is_empty() {
                    bail!(
                        "{}: reads {LAST_BUILD}, which needs [{name}] last_build = {{ column = \
                         \"Arrow type\", … }} in {}",
                        path.display(),
                        sidecar()
                    );
                }
                reads.remove(LAST_BUILD);
            }
            if !doc.last_build.is_empty() {
                if doc.incremental.is_none() {
                    bail!(
                        "{}: [{name}] sets last_build, which needs incremental (only an \
                         incremental build has a last build to add to)",
                        sidecar()
                    );
                }
                doc.last_build_schema()
                    .with_context(|| format!("{}: [{name}]", sidecar()))?;
            }
            models.push(Model {
                name,
                layer,
                path,
                sql,
                reads,
                doc,
            });
        }
        for (folder, table) in &docs {
            for key in table.keys() {
                if !models.iter().any(|m| &m.name == key) {
                    bail!(
                        "{}: [{key}] documents a model with no {key}.sql beside it",
                        folder.join("_models.toml").display()
                    );
                }
            }
        }
        Ok(Self {
            models: order(models)?,
        })
    }

    /// The model named `name`.
    pub fn get(&self, name: &str) -> Option<&Model> {
        self.models.iter().find(|m| m.name == name)
    }
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default()
}

fn read_sidecar(path: &Path) -> Result<toml::Table> {
    if !path.exists() {
        return Ok(toml::Table::new());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{}: invalid TOML", path.display()))
}

/// The tables a query reads (not its CTEs), lower case. One SELECT per file.
pub fn tables_read(ctx: &SessionContext, sql: &str) -> Result<BTreeSet<String>> {
    let state = ctx.state();
    let statement = state.sql_to_statement(sql, &state.config().options().sql_parser.dialect)?;
    match &statement {
        datafusion::sql::parser::Statement::Statement(s)
            if matches!(**s, datafusion::sql::sqlparser::ast::Statement::Query(_)) => {}
        _ => bail!("a model file holds one SELECT (with CTEs); found another statement"),
    }
    Ok(state
        .resolve_table_references(&statement)?
        .into_iter()
        .map(|t| t.table().to_lowercase())
        .collect())
}

/// Orders models so each comes after the models it reads (Kahn's algorithm, ties broken by
/// layer then name so the order is stable). A cycle is an error naming its members.
fn order(models: Vec<Model>) -> Result<Vec<Model>> {
    let mut by_name: BTreeMap<String, Model> = BTreeMap::new();
    for m in models {
        if let Some(other) = by_name.get(&m.name) {
            bail!(
                "two models are called {:?}: {} and {}",
                m.name,
                other.path.display(),
                m.path.display()
            );
        }
        by_name.insert(m.name.clone(), m);
    }
    let rank = |m: &Model| {
        let layer = LAYERS
            .iter()
            .position(|l| *l == m.layer)
            .unwrap_or(LAYERS.len());
        (layer, m.name.clone())
    };
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::with_capacity(by_name.len());
    while !by_name.is_empty() {
        let next = by_name
            .values()
            .filter(|m| {
                m.reads
                    .iter()
                    .all(|t| done.contains(t) || !by_name.contains_key(t) || *t == m.name)
            })
            .min_by_key(|m| rank(m))
            .map(|m| m.name.clone());
        let Some(name) = next else {
            let stuck: Vec<&str> = by_name.keys().map(String::as_str).collect();
            bail!("the models {stuck:?} read each other in a cycle");
        };
        let m = by_name.remove(&name).expect("present");
        done.insert(name);
        out.push(m);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_exclude_ctes_and_order_follows_reads() {
        let ctx = SessionContext::new();
        let reads = tables_read(
            &ctx,
            "with a as (select * from chis), b as (select * from a join registrations r on true) select * from b",
        )
        .unwrap();
        assert_eq!(
            reads.into_iter().collect::<Vec<_>>(),
            vec!["chis", "registrations"]
        );
        assert!(tables_read(&ctx, "insert into t values (1)").is_err());
        let m = |name: &str, layer: &str, reads: &[&str]| Model {
            name: name.into(),
            layer: layer.into(),
            path: PathBuf::from(format!("{name}.sql")),
            sql: String::new(),
            reads: reads.iter().map(|s| s.to_string()).collect(),
            doc: ModelDoc::default(),
        };
        let ordered = order(vec![
            m("metric_values", "marts", &["reach"]),
            m("reach", "metrics", &["stg_children", "chis"]),
            m("stg_children", "staging", &["chis"]),
        ])
        .unwrap();
        let names: Vec<_> = ordered.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["stg_children", "reach", "metric_values"]);
        let err = order(vec![m("a", "x", &["b"]), m("b", "x", &["a"])]).unwrap_err();
        assert!(err.to_string().contains("cycle"), "{err}");
    }

    #[test]
    fn keep_earlier_needs_incremental_and_a_unique_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("firsts.sql"), "select 1 as k").unwrap();
        let load = |doc: &str| {
            std::fs::write(dir.path().join("_models.toml"), doc).unwrap();
            Project::load(dir.path(), &SessionContext::new())
        };
        let err = load("[firsts]\nunique_key = [\"k\"]\nkeep_earlier = true\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("[firsts] sets keep_earlier, which needs incremental"),
            "{err}"
        );
        assert!(load("[firsts]\nincremental = \"d\"\nkeep_earlier = true\n").is_err());
        let project =
            load("[firsts]\nunique_key = [\"k\"]\nincremental = \"d\"\nkeep_earlier = true\n")
                .unwrap();
        assert!(project.get("firsts").unwrap().doc.keep_earlier);
    }

    #[test]
    fn last_build_is_declared_typed_and_only_for_incremental_models() {
        let dir = tempfile::tempdir().unwrap();
        let load = |sql: &str, doc: &str| {
            std::fs::write(dir.path().join("counts.sql"), sql).unwrap();
            std::fs::write(dir.path().join("_models.toml"), doc).unwrap();
            Project::load(dir.path(), &SessionContext::new())
        };
        let sql = "select d, count(*) as n from events group by d \
                   union all select d, n from last_build";
        let err = load(sql, "[counts]\nincremental = \"d\"\n").unwrap_err();
        assert!(
            format!("{err:#}").contains("reads last_build, which needs [counts] last_build"),
            "{err:#}"
        );
        let err = load(sql, "[counts]\nlast_build = { d = \"Date32\" }\n").unwrap_err();
        assert!(
            format!("{err:#}").contains("[counts] sets last_build, which needs incremental"),
            "{err:#}"
        );
        let err = load(
            sql,
            "[counts]\nincremental = \"d\"\nlast_build = { d = \"Date32\", n = \"Integer\" }\n",
        )
        .unwrap_err();
        assert!(
            format!("{err:#}")
                .contains("last_build column \"n\": \"Integer\" is not an Arrow type"),
            "{err:#}"
        );
        let project = load(
            sql,
            "[counts]\nincremental = \"d\"\nlast_build = { d = \"Date32\", n = \"Int64\" }\n",
        )
        .unwrap();
        let counts = project.get("counts").unwrap();
        // The model's own last build is not a table it depends on.
        assert_eq!(counts.reads.iter().collect::<Vec<_>>(), ["events"]);
        let schema = counts.doc.last_build_schema().unwrap().unwrap();
        assert_eq!(
            schema
                .fields()
                .iter()
                .map(|f| (f.name().as_str(), f.data_type().clone()))
                .collect::<Vec<_>>(),
            [
                ("d", arrow::datatypes::DataType::Date32),
                ("n", arrow::datatypes::DataType::Int64)
            ]
        );
    }
}
