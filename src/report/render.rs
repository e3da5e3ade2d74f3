//! Rendering: report declarations in `reports/`, minijinja templates (strict about undefined
//! values), HTML and PDF written to the lake's `reports/` area with an index page.
//!
//! Layout of `reports/` (council-editable, read at run time, no recompiling):
//!
//! ```text
//! reports/reports.toml              council name, default audience, PDF, e-mail delivery
//! reports/disclosure.toml           disclosure policy per audience
//! reports/ofsted_rubric.toml        the self-evaluation rubric
//! reports/_layout.html              page layout (the mandatory statement lives here)
//! reports/_macros.html              macros: grade badges, figure blocks
//! reports/index.html                the index page of a render
//! reports/<name>/report.toml        one report: title, builder, units, tables it needs
//! reports/<name>/report.html        its template
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior, Value, context};
use serde::{Deserialize, Serialize};

use super::data::ReportData;
use super::disclosure::DisclosureConfig;
use super::evaluation::{DisclosureView, Inputs, Period, Unit};
use super::figures::{DEPLOYMENT, Figures, group_code};
use super::pdf::Chromium;
use super::rubric::Rubric;
use crate::lake::Lake;
use crate::metrics::session::{LakeSession, Limits};

/// `reports/reports.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportsConfig {
    /// Printed in titles and in the mandatory statement.
    pub council_name: String,
    /// Audience of reports that do not name one (an audience of `disclosure.toml`).
    pub audience: String,
    /// Make a PDF beside each HTML file (needs Chromium; see docs/reports.md).
    #[serde(default = "yes")]
    pub pdf: bool,
    /// Interval level of the figures (as `[stats] confidence` in sql/metrics.toml).
    #[serde(default = "confidence")]
    pub confidence: f64,
    #[serde(default)]
    pub delivery: Delivery,
}

fn yes() -> bool {
    true
}

fn confidence() -> f64 {
    0.95
}

/// Who receives the rendered reports by e-mail (SMTP settings from `EARLYSTART_SMTP_*`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    #[serde(default)]
    pub email: Vec<String>,
}

/// `reports/<name>/report.toml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    pub title: String,
    /// Which context builder fills the template: `centre_evaluation`.
    pub builder: String,
    /// Template file inside the report's folder.
    pub template: String,
    /// Audience (overrides reports.toml).
    #[serde(default)]
    pub audience: Option<String>,
    /// `centre` (one document per centre reach area), `group` (one per centre group of
    /// `centre_groups`, when the lake has it) and/or `la` (the whole council).
    pub units: Vec<String>,
    /// Lake tables the report reads: checked before anything renders.
    pub tables: Vec<String>,
}

/// Tables the centre evaluation builder reads.
const EVALUATION_TABLES: [&str; 12] = [
    "metric_values",
    "ofsted_inspections",
    "lot_kpis",
    "contracts",
    "metric_catalogue",
    "centres",
    "reach_areas",
    "reach_by_decile",
    "attendances",
    "activities",
    "file_loads",
    "ref_target_groups",
];

/// Tables the value-for-money builder reads.
const VALUE_TABLES: [&str; 10] = [
    "metric_values",
    "avoidance_cohorts",
    "ref_unit_costs",
    "metric_catalogue",
    "centres",
    "centre_costs",
    "contracts",
    "lot_kpis",
    "reach_by_lsoa",
    "postcodes",
];

/// The mandatory statement of ofsted.md §3.1.
pub fn statement(council_name: &str) -> String {
    format!(
        "This is a data-driven self-evaluation produced by {council_name} with earlystart from \
         administrative data. It follows the layout of Ofsted's children's centre inspection \
         reports (2013–2015 framework) so that it can be read alongside them. It is not an \
         Ofsted inspection report, Ofsted was not involved in producing it, and its grades are \
         not Ofsted judgements."
    )
}

/// What to render.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Report names (folders under reports/); empty = every report.
    pub reports: Vec<String>,
    /// Only this centre (and no whole-council document).
    pub centre: Option<String>,
    /// Financial year such as `2024-25`; default the latest in the lake.
    pub period: Option<String>,
    /// Folder name under the lake's `reports/` (default: a timestamp).
    pub render_id: Option<String>,
    /// Send the rendered set to `[delivery] email`.
    pub email: bool,
    /// Overrides reports.toml's `pdf` (tests render HTML only for golden files).
    pub pdf: Option<bool>,
}

/// One rendered document.
#[derive(Debug, Clone, Serialize)]
pub struct Rendered {
    pub report: String,
    pub title: String,
    pub unit_name: String,
    pub unit_code: String,
    pub overall: String,
    pub html: String,
    pub pdf: Option<String>,
    pub html_bytes: usize,
    pub pdf_bytes: Option<usize>,
}

/// What a render did.
#[derive(Debug, Clone, Serialize)]
pub struct RenderSummary {
    pub render_id: String,
    pub period: String,
    pub documents: Vec<Rendered>,
    pub index: String,
    pub pdf_note: Option<String>,
    pub seconds: f64,
    pub emailed_to: Vec<String>,
}

impl RenderSummary {
    /// Lines for the terminal.
    pub fn render(&self) -> String {
        let pdfs = self.documents.iter().filter(|d| d.pdf.is_some()).count();
        let pdf_bytes: usize = self.documents.iter().filter_map(|d| d.pdf_bytes).sum();
        let mut out = format!(
            "Reports: {} documents for {} ({} PDF, {:.1} MB of PDF) in {:.1} s; index: {}",
            self.documents.len(),
            self.period,
            pdfs,
            pdf_bytes as f64 / 1e6,
            self.seconds,
            self.index
        );
        if let Some(note) = &self.pdf_note {
            out.push_str(&format!("\n{note}"));
        }
        if !self.emailed_to.is_empty() {
            out.push_str(&format!("\nE-mailed to {}", self.emailed_to.join(", ")));
        }
        out
    }
}

/// The report folders under `reports/`.
pub fn list_reports(project: &Path) -> Result<Vec<String>> {
    let dir = project.join("reports");
    let mut names = Vec::new();
    for entry in
        std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?
    {
        let entry = entry?;
        if entry.path().join("report.toml").is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

fn load_spec(project: &Path, name: &str) -> Result<ReportSpec> {
    let path = project.join("reports").join(name).join("report.toml");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no report {name:?}: expected {} (reports available: {})",
            path.display(),
            list_reports(project).unwrap_or_default().join(", ")
        )
    })?;
    let spec: ReportSpec = toml::from_str(&text)
        .with_context(|| format!("{}: invalid report declaration", path.display()))?;
    let reads: &[&str] = match spec.builder.as_str() {
        "centre_evaluation" => &EVALUATION_TABLES,
        "value_for_money" => &VALUE_TABLES,
        other => bail!(
            "{}: unknown builder {other:?} (have: centre_evaluation, value_for_money)",
            path.display()
        ),
    };
    let missing: Vec<&str> = reads
        .iter()
        .filter(|t| !spec.tables.iter().any(|d| d == *t))
        .copied()
        .collect();
    if !missing.is_empty() {
        bail!(
            "{}: the {} builder reads {missing:?}; list them under tables",
            path.display(),
            spec.builder
        );
    }
    for unit in &spec.units {
        if !["centre", "group", "la"].contains(&unit.as_str()) {
            bail!(
                "{}: unknown unit {unit:?} (expected centre, group or la)",
                path.display()
            );
        }
    }
    Ok(spec)
}

/// The template environment over `reports/`: strict about undefined values, HTML escaping.
pub fn environment(project: &Path) -> Environment<'static> {
    let root: PathBuf = project.join("reports");
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_filter("thousands", thousands_filter);
    env.add_filter("css_string", css_string_filter);
    env.set_loader(move |name: &str| {
        // Names are relative to reports/ and may not climb out of it.
        if name.split('/').any(|part| part == ".." || part.is_empty()) {
            return Ok(None);
        }
        match std::fs::read_to_string(root.join(name)) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!("cannot read template {name}: {e}"),
            )),
        }
    });
    env
}

/// `{{ n | thousands }}`: 12345 → "12,345" (other values unchanged).
fn thousands_filter(value: Value) -> Value {
    match i64::try_from(value.clone()) {
        Ok(n) if n >= 0 => Value::from(super::disclosure::group_thousands(n as u64)),
        _ => value,
    }
}

/// `{{ text | css_string }}`: a quoted CSS string (for `content:` in page margin boxes), safe
/// inside a `<style>` element.
fn css_string_filter(text: String) -> Value {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("\\3C "),
            '>' => out.push_str("\\3E "),
            '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    Value::from_safe_string(out)
}

/// Renders the chosen reports from the lake into the lake's `reports/<render_id>/`:
/// settings → the lake's figures → one builder per report → HTML (+ PDF) → index → e-mail.
pub async fn render(project: &Path, lake: &Lake, opts: &RenderOptions) -> Result<RenderSummary> {
    let started = Instant::now();
    let settings = Settings::load(project, opts)?;
    let session = LakeSession::open(lake, Limits::default(), settings.config.confidence).await?;
    let data = ReportData::new(&session, &settings.names(), &settings.declared_tables())?;
    let shared = Shared::load(&data, opts.period.as_deref()).await?;
    let render_id = opts
        .render_id
        .clone()
        .unwrap_or_else(|| chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string());
    let want_pdf = opts.pdf.unwrap_or(settings.config.pdf);
    let out = Output {
        lake,
        chromium: if want_pdf { Chromium::find() } else { None },
        work: tempfile_dir()?,
        render_id: render_id.clone(),
    };
    let pdf_note = match (&out.chromium, want_pdf) {
        (_, false) => Some("PDF: off".into()),
        (None, true) => Some(
            "PDF: skipped, Chromium not found (install the Debian package chromium, or set \
             EARLYSTART_CHROMIUM to a Chromium or Chrome binary)"
                .into(),
        ),
        _ => None,
    };
    let env = environment(project);
    let mut documents = Vec::new();
    for (name, spec) in &settings.specs {
        let template = env
            .get_template(&format!("{name}/{}", spec.template))
            .with_context(|| format!("report {name}: cannot load its template"))?;
        let report = Report::new(&settings, &shared, name, spec)?;
        match spec.builder.as_str() {
            "value_for_money" => documents.push(
                value_document(project, &data, &settings, &shared, &report, &template, &out)
                    .await?,
            ),
            _ => documents.extend(
                evaluation_documents(&data, &settings, &shared, &report, &template, &out, opts)
                    .await?,
            ),
        }
    }
    let period = &shared.period;
    let index_html = env
        .get_template("index.html")
        .context("cannot load reports/index.html")?
        .render(context! {
            council_name => &settings.config.council_name,
            period => Value::from(Serde(period)),
            render_id => &render_id,
            documents => Value::from(Serde(&documents)),
            pdf_note => Value::from(Serde(&pdf_note)),
        })
        .map_err(|e| anyhow::anyhow!("reports/index.html: {}", describe_template_error(&e)))?;
    let index = format!("reports/{render_id}/index.html");
    lake.put(&index, Bytes::from(index_html)).await?;
    let _ = std::fs::remove_dir_all(&out.work);

    let mut emailed_to = Vec::new();
    if opts.email && !settings.config.delivery.email.is_empty() {
        deliver(lake, &settings.config, &render_id, period, &documents).await?;
        emailed_to = settings.config.delivery.email.clone();
    }
    Ok(RenderSummary {
        render_id,
        period: period.label.clone(),
        documents,
        index: lake
            .root()
            .join(&index)
            .map(|u| u.to_string())
            .unwrap_or(index),
        pdf_note,
        seconds: started.elapsed().as_secs_f64(),
        emailed_to,
    })
}

/// The files of `reports/` a render needs, read and checked before the lake is opened.
struct Settings {
    config: ReportsConfig,
    disclosure: DisclosureConfig,
    rubric: Rubric,
    evidence: super::evidence::ManualEvidence,
    specs: Vec<(String, ReportSpec)>,
}

impl Settings {
    fn load(project: &Path, opts: &RenderOptions) -> Result<Settings> {
        let dir = project.join("reports");
        let config: ReportsConfig = {
            let path = dir.join("reports.toml");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("{}: invalid", path.display()))?
        };
        let names = if opts.reports.is_empty() {
            list_reports(project)?
        } else {
            opts.reports.clone()
        };
        Ok(Settings {
            config,
            disclosure: DisclosureConfig::load(&dir.join("disclosure.toml"))?,
            rubric: Rubric::load(&dir.join("ofsted_rubric.toml"))?,
            evidence: super::evidence::ManualEvidence::load(&dir.join("manual_evidence.toml"))?,
            specs: names
                .iter()
                .map(|n| load_spec(project, n).map(|s| (n.clone(), s)))
                .collect::<Result<_>>()?,
        })
    }

    fn names(&self) -> String {
        self.specs
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn declared_tables(&self) -> Vec<String> {
        let mut tables: Vec<String> = self
            .specs
            .iter()
            .flat_map(|(_, s)| s.tables.clone())
            .collect();
        tables.sort();
        tables.dedup();
        tables
    }
}

/// What every report of a render reads: the period, financial-year metric values, the
/// catalogue, sites and centre groups.
struct Shared {
    period: Period,
    lot_kpis: Vec<super::data::LotKpi>,
    contracts: Vec<super::data::ContractRow>,
    inspections: Vec<super::data::OfstedRow>,
    catalogue: Vec<super::data::CatalogueRow>,
    fy_rows: Vec<super::data::MetricRow>,
    centres: Vec<super::data::CentreRow>,
    groups: BTreeMap<String, Vec<String>>,
    group_names: BTreeMap<String, String>,
}

impl Shared {
    async fn load(data: &ReportData<'_>, period: Option<&str>) -> Result<Shared> {
        let fy_rows = data.metric_values("fy").await?;
        let period = match period {
            Some(label) => Period::parse(label).with_context(|| {
                format!("--period {label:?}: expected a financial year such as 2024-25")
            })?,
            None => {
                let end = fy_rows
                    .iter()
                    .map(|r| r.period_end.clone())
                    .filter(|e| e.ends_with("-03-31"))
                    .max()
                    .context("metric_values holds no financial year: run the metrics first")?;
                Period::fy_ending(&end).context("bad period end")?
            }
        };
        if !fy_rows.iter().any(|r| r.period_end == period.end) {
            bail!(
                "metric_values holds no figures for {} (period ending {})",
                period.label,
                period.end
            );
        }
        #[derive(Deserialize)]
        struct Member {
            group_id: String,
            group_name: String,
            centre_id: String,
        }
        // Centre groups are optional: without them there are centre and council reports.
        let members: Vec<Member> = data
            .rows("select group_id, group_name, centre_id from centre_groups order by 1, 3")
            .await?;
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut group_names = BTreeMap::new();
        for m in members {
            groups
                .entry(m.group_id.clone())
                .or_default()
                .push(m.centre_id);
            group_names.insert(m.group_id, m.group_name);
        }
        let centres = data.centres().await?;
        let lot_kpis = data.lot_kpis().await?;
        let mut fy_rows = fy_rows;
        let academic = data.metric_values("academic_year").await?;
        fy_rows.extend(academic_years_in_financial_years(&fy_rows, academic));
        fy_rows.extend(kpi_score_rows(&lot_kpis, &centres, &fy_rows));
        Ok(Shared {
            period,
            catalogue: data.catalogue().await?,
            fy_rows,
            centres,
            groups,
            group_names,
            lot_kpis,
            contracts: data.contracts().await?,
            inspections: data.ofsted_inspections().await?,
        })
    }
}

/// EYFS Profile results are by academic year (1 September – 31 August): each financial year
/// shows the academic year that ended within it (the Reception year ending in July 2024 is
/// reported in 2024-25), with a flag naming the academic year beside the figure.
fn academic_years_in_financial_years(
    fy_rows: &[super::data::MetricRow],
    academic: Vec<super::data::MetricRow>,
) -> Vec<super::data::MetricRow> {
    let years: std::collections::BTreeSet<(&str, &str)> = fy_rows
        .iter()
        .filter(|r| r.period_end.ends_with("-03-31"))
        .map(|r| (r.period_start.as_str(), r.period_end.as_str()))
        .collect();
    let mut out = Vec::new();
    for mut row in academic {
        // ISO dates compare as text.
        let Some((start, end)) = years.iter().find(|(start, end)| {
            *start <= row.period_end.as_str() && row.period_end.as_str() <= *end
        }) else {
            continue;
        };
        let first = row.period_end[..4].parse::<i32>().unwrap_or_default() - 1;
        let flag = format!("academic_year_{first}/{:02}", (first + 1) % 100);
        row.quality_flags = if row.quality_flags.is_empty() {
            flag
        } else {
            format!("{},{flag}", row.quality_flags)
        };
        row.period_type = "fy".into();
        row.period_start = start.to_string();
        row.period_end = end.to_string();
        out.push(row);
    }
    out
}

/// KPI-SCORE as a figure of each centre reach area: its lot's score at each financial year
/// end (value-for-money.md §4, ofsted.md §4.4). A score of scores, so no counts to control.
fn kpi_score_rows(
    kpis: &[super::data::LotKpi],
    centres: &[super::data::CentreRow],
    fy_rows: &[super::data::MetricRow],
) -> Vec<super::data::MetricRow> {
    let Some(template) = fy_rows.first() else {
        return Vec::new();
    };
    let mut scores: BTreeMap<(&str, &str), f64> = BTreeMap::new();
    for k in kpis {
        if let Some(score) = k.kpi_score {
            scores.insert((k.lot.as_str(), k.period_end.as_str()), score);
        }
    }
    let ends: std::collections::BTreeSet<(&str, &str)> = fy_rows
        .iter()
        .map(|r| (r.period_start.as_str(), r.period_end.as_str()))
        .collect();
    let mut out = Vec::new();
    for c in centres {
        let Some(lot) = c.lot.as_deref() else {
            continue;
        };
        for (start, end) in &ends {
            if let Some(score) = scores.get(&(lot, end)) {
                out.push(super::data::MetricRow {
                    metric_id: "KPI-SCORE".into(),
                    period_start: start.to_string(),
                    period_end: end.to_string(),
                    geography_type: "reach_area".into(),
                    geography_code: c.centre_id.clone(),
                    breakdown_type: "all".into(),
                    breakdown_value: "all".into(),
                    numerator: None,
                    denominator: None,
                    value: Some(*score),
                    lower_95: None,
                    upper_95: None,
                    comparator_type: "none".into(),
                    comparator_value: None,
                    comparison: "not_compared".into(),
                    quality_flags: String::new(),
                    uses_unverified: false,
                    ..template.clone()
                });
            }
        }
    }
    out
}

/// One report's audience and its controlled figures.
struct Report<'a> {
    name: &'a str,
    spec: &'a ReportSpec,
    audience: String,
    fy: Figures,
    disclosure: DisclosureView,
}

impl<'a> Report<'a> {
    fn new(
        settings: &Settings,
        shared: &Shared,
        name: &'a str,
        spec: &'a ReportSpec,
    ) -> Result<Self> {
        let audience = spec
            .audience
            .clone()
            .unwrap_or_else(|| settings.config.audience.clone());
        if !settings.disclosure.audiences.contains_key(&audience) {
            bail!("report {name}: audience {audience:?} is not in reports/disclosure.toml");
        }
        let fy = Figures::control(
            &shared.fy_rows,
            &shared.catalogue,
            &settings.disclosure,
            &audience,
            settings.config.confidence,
            &shared.groups,
        )?;
        let mut policies: Vec<String> = fy.by_key.values().map(|f| f.policy.to_string()).collect();
        policies.sort();
        policies.dedup();
        let footnotes = policies
            .iter()
            .map(|p| settings.disclosure.policy(p).map(|p| p.footnote()))
            .collect::<Result<Vec<_>>>()?;
        let banner = policies
            .iter()
            .any(|p| p == "none")
            .then(|| super::disclosure::NOT_FOR_PUBLICATION.to_string());
        Ok(Report {
            name,
            spec,
            disclosure: DisclosureView {
                audience: audience.clone(),
                policies,
                footnotes,
                banner,
            },
            audience,
            fy,
        })
    }

    /// Renders a context with the report's template and checks its mandatory statement.
    fn html<T: Serialize>(
        &self,
        template: &minijinja::Template<'_, '_>,
        ctx: &T,
        statement: &str,
        unit: &str,
    ) -> Result<String> {
        let html = template
            .render(
                context! { r => Value::from(Serde(ctx)), report => Value::from(Serde(self.spec)) },
            )
            .map_err(|e| anyhow::anyhow!("{}", describe_template_error(&e)))
            .with_context(|| format!("report {} for {unit}: template failed", self.name))?;
        check_statement(&html, statement).with_context(|| {
            format!(
                "report {}: template reports/{}/{}",
                self.name, self.name, self.spec.template
            )
        })?;
        Ok(html)
    }
}

/// Where documents go: the lake's `reports/<render_id>/`, with PDFs when Chromium is there.
struct Output<'a> {
    lake: &'a Lake,
    chromium: Option<Chromium>,
    work: PathBuf,
    render_id: String,
}

impl Output<'_> {
    /// Writes `<file>.html` (and `.pdf`) and describes the document for the index.
    async fn write(
        &self,
        report: &Report<'_>,
        file: &str,
        html: &str,
        unit: (&str, &str),
        overall: String,
    ) -> Result<Rendered> {
        let (pdf, pdf_bytes) = publish(
            self.lake,
            self.chromium.as_ref(),
            &self.work,
            &self.render_id,
            file,
            html,
        )
        .await?;
        tracing::info!(report = %report.name, unit = %unit.1, "Report rendered.");
        Ok(Rendered {
            report: report.name.to_string(),
            title: report.spec.title.clone(),
            unit_name: unit.0.to_string(),
            unit_code: unit.1.to_string(),
            overall,
            html: format!("{file}.html"),
            pdf,
            html_bytes: html.len(),
            pdf_bytes,
        })
    }
}

/// The value-for-money report: one document for the council.
async fn value_document(
    project: &Path,
    data: &ReportData<'_>,
    settings: &Settings,
    shared: &Shared,
    report: &Report<'_>,
    template: &minijinja::Template<'_, '_>,
    out: &Output<'_>,
) -> Result<Rendered> {
    let council = &settings.config.council_name;
    let scenarios = scenario_views(
        project,
        data,
        &shared.period,
        &shared.centres,
        &settings
            .disclosure
            .policy_for(&report.audience, "REACH-01")?,
        settings.config.confidence,
    )
    .await?;
    let avoidance = avoidance_view(
        project,
        data,
        &shared.period,
        &settings.disclosure.policy_for(&report.audience, "VFM-07")?,
        settings.config.confidence,
    )
    .await?;
    let ctx = super::value::context(
        council,
        &shared.period,
        &report.fy,
        &shared.catalogue,
        &shared.centres,
        report.disclosure.clone(),
        scenarios,
        super::value::contract_performance(&shared.lot_kpis, &shared.contracts, &shared.period),
        avoidance,
    )?;
    let html = report.html(template, &ctx, &ctx.statement, council)?;
    let file = format!("{}/council", report.name);
    out.write(
        report,
        &file,
        &html,
        (council, DEPLOYMENT),
        ctx.total_cost.clone(),
    )
    .await
}

/// The centre self-evaluations: one document per centre reach area, centre group and the
/// council, as the report's `units` ask.
async fn evaluation_documents(
    data: &ReportData<'_>,
    settings: &Settings,
    shared: &Shared,
    report: &Report<'_>,
    template: &minijinja::Template<'_, '_>,
    out: &Output<'_>,
    opts: &RenderOptions,
) -> Result<Vec<Rendered>> {
    let period = &shared.period;
    let confidence = settings.config.confidence;
    let rolling_rows: Vec<_> = data
        .metric_values("rolling12")
        .await?
        .into_iter()
        .filter(|r| r.period_end <= period.end && r.metric_id.starts_with("REACH-0"))
        .collect();
    let mut rolling_ends: Vec<String> = rolling_rows.iter().map(|r| r.period_end.clone()).collect();
    rolling_ends.sort();
    rolling_ends.dedup();
    let rolling = Figures::control(
        &rolling_rows,
        &shared.catalogue,
        &settings.disclosure,
        &report.audience,
        confidence,
        &shared.groups,
    )?;
    let sizes: BTreeMap<String, u64> = data.reach_area_sizes().await?.into_iter().collect();
    let deciles = data.deciles("fy", &period.end).await?;
    let activities = data.activity_counts(&period.start, &period.end).await?;
    let sources = data.source_loads().await?;
    #[derive(Deserialize)]
    struct Label {
        group_code: String,
        label: String,
    }
    let target_group_labels: BTreeMap<String, String> = data
        .rows::<Label>("select group_code, label from ref_target_groups")
        .await?
        .into_iter()
        .map(|l| (l.group_code, l.label))
        .collect();
    let council = &settings.config.council_name;
    let rubric = settings.evidence.extend(&settings.rubric);
    let inputs = Inputs {
        council_name: council,
        audience: &report.audience,
        rubric: &rubric,
        catalogue: &shared.catalogue,
        fy: &report.fy,
        rolling: &rolling,
        rolling_ends,
        centres: &shared.centres,
        reach_area_sizes: &sizes,
        deciles: &deciles,
        activities: &activities,
        sources: &sources,
        target_group_labels: &target_group_labels,
        policy_for_counts: settings
            .disclosure
            .policy_for(&report.audience, "REACH-01")?,
        confidence,
        statement: statement(council),
        footnotes: report.disclosure.footnotes.clone(),
        policies: report.disclosure.policies.clone(),
        inspections: &shared.inspections,
        evidence: &settings.evidence,
    };
    let mut documents = Vec::new();
    for unit in units(report.spec, shared, opts, council)? {
        let ctx = inputs.context(&unit, period)?;
        let html = report.html(template, &ctx, &inputs.statement, &unit.name)?;
        let file = format!("{}/{}", report.name, file_stem(&unit.code));
        let overall = ctx
            .overall
            .this
            .as_ref()
            .map_or("not graded".into(), |g| g.text.clone());
        documents.push(
            out.write(report, &file, &html, (&unit.name, &unit.code), overall)
                .await?,
        );
    }
    Ok(documents)
}

/// The units a centre evaluation covers: every centre with a reach area (or the one asked
/// for), every centre group, and the council.
fn units(
    spec: &ReportSpec,
    shared: &Shared,
    opts: &RenderOptions,
    council: &str,
) -> Result<Vec<Unit>> {
    let wants = |kind: &str| spec.units.iter().any(|u| u == kind);
    let mut units = Vec::new();
    if wants("centre") {
        for c in &shared.centres {
            if opts
                .centre
                .as_ref()
                .is_some_and(|only| only != &c.centre_id)
            {
                continue;
            }
            let has_reach_area = shared.fy_rows.iter().any(|r| {
                r.geography_type == "reach_area"
                    && r.geography_code == c.centre_id
                    && r.period_end == shared.period.end
            });
            if !has_reach_area {
                continue; // a site without a reach area (outreach venue, hub)
            }
            units.push(Unit {
                kind: "centre".into(),
                code: c.centre_id.clone(),
                name: c.name.clone(),
                word: "centre".into(),
                centre: Some(c.clone()),
                members: Vec::new(),
            });
        }
        if let Some(only) = &opts.centre
            && units.is_empty()
        {
            bail!(
                "no centre {only:?} with a reach area in the lake for {}",
                shared.period.label
            );
        }
    }
    if wants("group") && opts.centre.is_none() {
        for (id, member_ids) in &shared.groups {
            units.push(Unit {
                kind: "group".into(),
                code: group_code(id),
                name: shared.group_names[id].clone(),
                word: "group".into(),
                centre: None,
                members: shared
                    .centres
                    .iter()
                    .filter(|c| member_ids.contains(&c.centre_id))
                    .cloned()
                    .collect(),
            });
        }
    }
    if wants("la") && opts.centre.is_none() {
        units.push(Unit {
            kind: "la".into(),
            code: DEPLOYMENT.into(),
            name: council.to_string(),
            word: "local authority".into(),
            centre: None,
            members: Vec::new(),
        });
    }
    Ok(units)
}

/// Runs every scenario of `reports/scenarios/*.toml` for the value-for-money report. A file
/// that does not parse stops the render; a scenario that cannot run on this lake (a site
/// that is not open) is shown with its reason.
async fn scenario_views(
    project: &Path,
    data: &ReportData<'_>,
    period: &Period,
    centres: &[super::data::CentreRow],
    policy: &super::disclosure::Policy,
    confidence: f64,
) -> Result<Vec<super::value::ScenarioView>> {
    let dir = project.join("reports/scenarios");
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect(),
        Err(_) => return Ok(Vec::new()),
    };
    files.sort();
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let costs = data.site_costs(&period.label).await?;
    let lsoas = data.reach_by_lsoa(&period.end).await?;
    let points = data.lsoa_points().await?;
    let mut out = Vec::new();
    for path in files {
        let spec = super::scenario::ScenarioSpec::load(&path)?;
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        out.push(super::value::scenario_view(
            &name, &spec, centres, &costs, &lsoas, &points, policy, confidence,
        )?);
    }
    Ok(out)
}

/// The cost-avoidance section from `reports/vfm_avoidance.toml` (none without the file; a
/// file that does not parse stops the render, as a scenario's does).
async fn avoidance_view(
    project: &Path,
    data: &ReportData<'_>,
    period: &Period,
    policy: &super::disclosure::Policy,
    confidence: f64,
) -> Result<Option<super::avoidance::AvoidanceView>> {
    let path = project.join("reports/vfm_avoidance.toml");
    if !path.exists() {
        return Ok(None);
    }
    let spec = super::avoidance::AvoidanceSpec::load(&path)?;
    let rows = data.avoidance_cohorts().await?;
    let costs = data.unit_costs().await?;
    super::avoidance::view(
        "reports/vfm_avoidance.toml",
        &spec,
        &rows,
        &costs,
        &period.end,
        policy,
        confidence,
    )
    .map(Some)
}

/// Writes one document's HTML, and its PDF when Chromium is there, under
/// `reports/<render_id>/<file>.html|.pdf`; returns the PDF's name and size.
async fn publish(
    lake: &Lake,
    chromium: Option<&Chromium>,
    work: &Path,
    render_id: &str,
    file: &str,
    html: &str,
) -> Result<(Option<String>, Option<usize>)> {
    lake.put(
        &format!("reports/{render_id}/{file}.html"),
        Bytes::from(html.to_string()),
    )
    .await?;
    let Some(c) = chromium else {
        return Ok((None, None));
    };
    let local = work.join(format!("{}.html", file.replace('/', "_")));
    std::fs::write(&local, html)?;
    let bytes = c.print_to_pdf(&local).await?;
    let n = bytes.len();
    lake.put(
        &format!("reports/{render_id}/{file}.pdf"),
        Bytes::from(bytes),
    )
    .await?;
    Ok((Some(format!("{file}.pdf")), Some(n)))
}

/// E-mails the rendered set: one message, the index as text, the PDFs (or HTML) attached.
async fn deliver(
    lake: &Lake,
    config: &ReportsConfig,
    render_id: &str,
    period: &Period,
    documents: &[Rendered],
) -> Result<()> {
    let Some(mailer) = crate::notify::Mailer::from_env()? else {
        bail!(
            "reports/reports.toml asks for e-mail delivery but EARLYSTART_SMTP_URL is not set \
             (see docs/operations.md)"
        );
    };
    let mut attachments = Vec::new();
    let mut body = format!(
        "{} reports for {} ({} documents). Each is a data-driven self-evaluation, not an Ofsted \
         judgement.\n\n",
        config.council_name,
        period.label,
        documents.len()
    );
    for d in documents {
        body.push_str(&format!(
            "- {}: {} — overall {}\n",
            d.title, d.unit_name, d.overall
        ));
        let (file, mime) = match &d.pdf {
            Some(pdf) => (pdf.clone(), "application/pdf"),
            None => (d.html.clone(), "text/html"),
        };
        let bytes = lake
            .get(&format!("reports/{render_id}/{file}"))
            .await?
            .with_context(|| format!("rendered file {file} is missing from the lake"))?;
        attachments.push((file.replace('/', "_"), mime.to_string(), bytes.to_vec()));
    }
    mailer
        .send_with_attachments(
            &config.delivery.email,
            &format!(
                "{}: early years reports {}",
                config.council_name, period.label
            ),
            &body,
            &attachments,
        )
        .await
}

/// The statement must be in the rendered page twice: under the title and in the page footer.
fn check_statement(html: &str, statement: &str) -> Result<()> {
    let text = html
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
        .replace("&quot;", "\"");
    let found = text.matches(statement).count();
    if found < 2 {
        bail!(
            "the rendered report shows the mandatory statement {found} time(s); it must be under \
             the title and in the page footer (shared/domain/ofsted.md §3.1): keep \
             {{{{ r.statement }}}} in both places of reports/_layout.html"
        );
    }
    Ok(())
}

fn describe_template_error(e: &minijinja::Error) -> String {
    let mut out = format!("{e}");
    if let Some(name) = e.name() {
        out.push_str(&format!(" (in reports/{name}"));
        if let Some(line) = e.line() {
            out.push_str(&format!(", line {line}"));
        }
        out.push(')');
    }
    out
}

/// Codes become file names: letters, digits, `-` and `_` only.
fn file_stem(code: &str) -> String {
    let stem: String = code
        .replacen("group:", "group-", 1)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if stem == "ALL" {
        "council".into()
    } else {
        stem
    }
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("earlystart-render-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    fn metric_row(
        period_type: &str,
        start: &str,
        end: &str,
        flags: &str,
    ) -> super::super::data::MetricRow {
        super::super::data::MetricRow {
            metric_id: "SR-10".into(),
            period_type: period_type.into(),
            period_start: start.into(),
            period_end: end.into(),
            geography_type: "deployment".into(),
            geography_code: "ALL".into(),
            breakdown_type: "all".into(),
            breakdown_value: "all".into(),
            numerator: Some(4.0),
            denominator: Some(7.0),
            value: Some(57.1),
            lower_95: None,
            upper_95: None,
            comparator_type: "none".into(),
            comparator_value: None,
            comparison: "not_compared".into(),
            denominator_source: "chis".into(),
            deprivation_vintage: "iod2025".into(),
            quality_flags: flags.into(),
            uses_unverified: false,
            run_id: "r".into(),
        }
    }

    #[test]
    fn academic_years_show_in_the_financial_year_they_end_in() {
        let fy = vec![
            metric_row("fy", "2023-04-01", "2024-03-31", ""),
            metric_row("fy", "2024-04-01", "2025-03-31", ""),
        ];
        let ay = vec![
            metric_row("academic_year", "2022-09-01", "2023-08-31", ""),
            metric_row("academic_year", "2023-09-01", "2024-08-31", "low_coverage"),
        ];
        let out = academic_years_in_financial_years(&fy, ay);
        // 2022/23 ended in 2023-24, which is in the lake; 2023/24 ended in 2024-25.
        let got: Vec<(String, String)> = out
            .iter()
            .map(|r| (r.period_end.clone(), r.quality_flags.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "2024-03-31".to_string(),
                    "academic_year_2022/23".to_string()
                ),
                (
                    "2025-03-31".to_string(),
                    "low_coverage,academic_year_2023/24".to_string()
                ),
            ]
        );
        assert!(out.iter().all(|r| r.period_type == "fy"));
        // An academic year ending after the last financial year is not shown.
        let later = vec![metric_row("academic_year", "2024-09-01", "2025-08-31", "")];
        assert!(academic_years_in_financial_years(&fy, later).is_empty());
    }

    use super::*;

    #[test]
    fn statement_must_appear_twice() {
        let s = statement("Test Council");
        let escaped = s.replace('\'', "&#x27;");
        assert!(
            check_statement(&format!("<p>{escaped}</p><footer>{escaped}</footer>"), &s).is_ok()
        );
        let err = check_statement(&format!("<p>{escaped}</p>"), &s)
            .unwrap_err()
            .to_string();
        assert!(err.contains("1 time(s)"), "{err}");
    }

    #[test]
    fn shipped_reports_declare_what_they_read() {
        let project = Path::new(env!("CARGO_MANIFEST_DIR"));
        for name in list_reports(project).unwrap() {
            load_spec(project, &name).unwrap();
        }
        assert_eq!(file_stem("ALL"), "council");
        assert_eq!(file_stem("CC/01"), "CC_01");
    }
}
