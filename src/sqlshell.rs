//! `earlystart sql`: analysts' read-only SQL over the lake, as a one-shot command
//! (`-c`, `-f file.sql`) with table, CSV, JSON or Parquet output, or as an interactive
//! prompt with history, multi-line statements and `\d` listings with the tables' docs.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use arrow::array::RecordBatch;
use datafusion::sql::parser::{DFParserBuilder, Statement};
use datafusion::sql::sqlparser::ast::Spanned as _;
use datafusion::sql::sqlparser::dialect::GenericDialect;

use crate::metrics::project::Project;
use crate::metrics::session::LakeSession;

/// Output formats of query results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned text table.
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON object per line.
    Json,
    /// Parquet (needs --output).
    Parquet,
}

/// One statement of a script, with the line it starts on.
#[derive(Debug, Clone)]
pub struct ScriptStatement {
    /// 1-based line of the statement's first token in its file (0 when unknown).
    pub line: u64,
    /// The parsed statement.
    pub statement: Statement,
}

/// Splits a script into statements, with their lines. A parse error names `origin` and the
/// line and column.
pub fn split_script(text: &str, origin: &str) -> Result<Vec<ScriptStatement>> {
    let statements = DFParserBuilder::new(text)
        .with_dialect(&GenericDialect {})
        .build()
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    Ok(statements
        .into_iter()
        .map(|statement| {
            let line = match &statement {
                Statement::Statement(inner) => inner.span().start.line,
                _ => 0,
            };
            ScriptStatement { line, statement }
        })
        .collect())
}

/// Runs a script (one or more statements) and writes each result.
pub async fn run_script(
    session: &LakeSession,
    text: &str,
    origin: &str,
    format: Format,
    output: Option<&Path>,
) -> Result<()> {
    let statements = split_script(text, origin)?;
    if statements.is_empty() {
        bail!("{origin}: no SQL statement");
    }
    if format == Format::Parquet && (output.is_none() || statements.len() > 1) {
        bail!("--format parquet needs --output FILE and a single statement");
    }
    let mut sink: Box<dyn Write> = match output {
        Some(p) if format != Format::Parquet => {
            Box::new(File::create(p).with_context(|| format!("cannot create {}", p.display()))?)
        }
        _ => Box::new(std::io::stdout().lock()),
    };
    for s in statements {
        let at = if s.line > 0 {
            format!("{origin}:{}", s.line)
        } else {
            origin.to_string()
        };
        let df = session
            .plan_statement(s.statement)
            .await
            .with_context(|| format!("{at}: the statement failed"))?;
        let batches = session
            .collect(df)
            .await
            .with_context(|| format!("{at}: the statement failed"))?;
        match (format, output) {
            (Format::Parquet, Some(p)) => write_parquet(&batches, p)?,
            _ => write_batches(&batches, format, &mut sink)?,
        }
    }
    Ok(())
}

/// Writes result batches in a text format.
pub fn write_batches(batches: &[RecordBatch], format: Format, out: &mut dyn Write) -> Result<()> {
    match format {
        Format::Table => {
            writeln!(
                out,
                "{}",
                arrow::util::pretty::pretty_format_batches(batches)?
            )?;
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            writeln!(out, "({rows} row{})", if rows == 1 { "" } else { "s" })?;
        }
        Format::Csv => {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out);
            for b in batches {
                w.write(b)?;
            }
        }
        Format::Json => {
            let mut w = arrow::json::LineDelimitedWriter::new(out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
        }
        Format::Parquet => bail!("Parquet output goes to a file: use --output FILE"),
    }
    Ok(())
}

fn write_parquet(batches: &[RecordBatch], path: &Path) -> Result<()> {
    let Some(first) = batches.first() else {
        bail!(
            "the query returned no batches; nothing to write to {}",
            path.display()
        );
    };
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = parquet::arrow::ArrowWriter::try_new(file, first.schema(), None)?;
    for b in batches {
        w.write(b)?;
    }
    w.close()?;
    Ok(())
}

/// Descriptions of tables and their columns for `\d`: the `sql/` sidecars for metric
/// tables, and one line per curated and ops table.
#[derive(Debug, Default)]
pub struct TableDocs {
    tables: BTreeMap<String, (String, BTreeMap<String, String>)>,
}

const LAKE_TABLE_DOCS: &[(&str, &str)] = &[
    ("centres", "Children's centre sites (extracts.md §3.1)"),
    ("reach_areas", "LSOAs of each centre's reach area (§3.2)"),
    (
        "centre_groups",
        "Children's centre groups: centres evaluated together (ofsted.md §1.2)",
    ),
    ("activities", "Activity catalogue with service type (§3.4)"),
    (
        "registrations",
        "Persons registered with a centre, pseudonymised (§3.3)",
    ),
    (
        "attendances",
        "One row per person per session attended (§3.5)",
    ),
    ("chis", "Child health register rows, pseudonymised (§4.1)"),
    ("hv_contacts", "Health visiting contacts (§4.2)"),
    ("asq3", "ASQ-3 questionnaires with scored domains (§4.3)"),
    (
        "iod",
        "Indices of Deprivation File 7 by LSOA and vintage (§8)",
    ),
    (
        "postcodes",
        "Postcode directory rows resolved to LSOAs (§8)",
    ),
    ("lsoa_lookup", "LSOA 2011 → 2021 lookup (§8)"),
    ("lsoa_population", "ONS population aged 0–4 by LSOA (§8)"),
    (
        "person_link",
        "Records of every source linked to one child key (§11)",
    ),
    (
        "quarantine",
        "Rejected fields with rule id and how to fix (§10)",
    ),
    ("validation_warnings", "Warnings on loaded rows (§10)"),
    ("rejected_files", "Files rejected whole (F rules)"),
    ("file_loads", "Every file seen by every run"),
    ("runs", "One row per pipeline run"),
    (
        "metric_params",
        "The tunables of sql/metrics.toml used by the last metric run",
    ),
    (
        "metric_catalogue",
        "sql/catalogue.toml: every metric's definition, unit and polarity",
    ),
    ("metric_run", "Id and time of the last metric run"),
];

impl TableDocs {
    /// Loads the docs of the project at `project` (missing or invalid sidecars just mean
    /// fewer descriptions: `\d` must work on any lake).
    pub fn load(project: &Path, session: &LakeSession) -> Self {
        let mut tables = BTreeMap::new();
        for (t, d) in LAKE_TABLE_DOCS {
            tables.insert(t.to_string(), (d.to_string(), BTreeMap::new()));
        }
        if let Ok(p) = Project::load(&project.join("sql"), &session.ctx) {
            for m in p.models {
                let cols = m
                    .doc
                    .column_docs()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(c, d)| (c, d.description))
                    .collect();
                tables.insert(m.name, (m.doc.description.trim().to_string(), cols));
            }
        }
        Self { tables }
    }

    fn table(&self, name: &str) -> &str {
        self.tables.get(name).map_or("", |t| t.0.as_str())
    }

    fn column(&self, table: &str, column: &str) -> &str {
        self.tables
            .get(table)
            .and_then(|t| t.1.get(column))
            .map_or("", String::as_str)
    }
}

/// Handles a backslash command; returns false on `\q`.
pub async fn meta_command(
    session: &LakeSession,
    docs: &TableDocs,
    line: &str,
    out: &mut dyn Write,
) -> Result<bool> {
    let mut words = line.split_whitespace();
    match (words.next(), words.next()) {
        (Some("\\q"), _) => return Ok(false),
        (Some("\\d"), None) => {
            let mut t = comfy_table::Table::new();
            t.set_header(["table", "area", "description"]);
            for e in &session.tables {
                t.add_row([e.name.as_str(), e.area.as_str(), docs.table(&e.name)]);
            }
            writeln!(out, "{t}")?;
        }
        (Some("\\d"), Some(name)) => {
            let df = session
                .ctx
                .table(name)
                .await
                .with_context(|| format!("no table {name:?}; \\d lists them"))?;
            let mut t = comfy_table::Table::new();
            t.set_header(["column", "type", "description"]);
            for f in df.schema().fields() {
                t.add_row([
                    f.name().as_str(),
                    &f.data_type().to_string(),
                    docs.column(name, f.name()),
                ]);
            }
            let d = docs.table(name);
            if !d.is_empty() {
                writeln!(out, "{name}: {d}")?;
            }
            writeln!(out, "{t}")?;
        }
        _ => writeln!(
            out,
            "\\d            list tables\n\\d TABLE      columns of TABLE with their docs\n\\q            quit\n\
             Statements end with ';' and may span lines. The session is read-only."
        )?,
    }
    Ok(true)
}

/// The interactive prompt. History is kept in `history`.
pub async fn repl(session: &LakeSession, docs: &TableDocs, history: Option<PathBuf>) -> Result<()> {
    use rustyline::error::ReadlineError;
    let mut rl = rustyline::DefaultEditor::new()?;
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    println!(
        "earlystart SQL over the lake ({} tables). \\d lists tables, \\? helps, \\q quits.",
        session.tables.len()
    );
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            "earlystart> "
        } else {
            "       ...> "
        };
        match rl.readline(prompt) {
            Ok(line) => {
                let trimmed = line.trim();
                if buffer.is_empty() && trimmed.starts_with('\\') {
                    let _ = rl.add_history_entry(trimmed);
                    match meta_command(session, docs, trimmed, &mut std::io::stdout()).await {
                        Ok(true) => continue,
                        Ok(false) => break,
                        Err(e) => {
                            eprintln!("error: {e:#}");
                            continue;
                        }
                    }
                }
                buffer.push_str(&line);
                buffer.push('\n');
                if !trimmed.ends_with(';') {
                    continue;
                }
                let sql = std::mem::take(&mut buffer);
                let _ = rl.add_history_entry(sql.trim());
                let started = std::time::Instant::now();
                if let Err(e) = run_script(session, &sql, "prompt", Format::Table, None).await {
                    eprintln!("error: {e:#}");
                } else {
                    println!("({:.3} s)", started.elapsed().as_secs_f64());
                }
            }
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(h) = &history {
        let _ = rl.save_history(h);
    }
    Ok(())
}

/// Parses a memory size such as `1536MiB`, `2GiB` or a plain number of bytes.
pub fn parse_size(s: &str) -> Result<usize> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: usize = n
        .parse()
        .with_context(|| format!("{s:?} is not a size such as 512MiB or 2GiB"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => bail!("unknown size unit {other:?} in {s:?} (use MiB or GiB)"),
    };
    Ok(n * mult)
}
