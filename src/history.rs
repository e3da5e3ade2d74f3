//! Run history for operators: `earlystart runs` lists recent runs from `ops/runs`;
//! `earlystart status` shows each pipeline's last run, whether one is in progress (its
//! lease), and when it is next due.

use std::path::Path;

use anyhow::{Context as _, Result};
use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use chrono::{DateTime, Utc};

use crate::lake::Lake;
use datafusion::prelude::SessionContext;

/// Rows of a query as strings, column by column (nulls as "").
fn cells(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>> {
    let options = FormatOptions::default().with_null("");
    let mut out = Vec::new();
    for b in batches {
        let formatters: Vec<ArrayFormatter<'_>> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<_, _>>()?;
        for row in 0..b.num_rows() {
            out.push(
                formatters
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .collect(),
            );
        }
    }
    Ok(out)
}

/// A session that sees `ops/runs` alone (loading every table of the lake to list runs would
/// be wasted work), or `None` before the first run.
async fn session(lake: &Lake) -> Result<Option<SessionContext>> {
    let ctx = SessionContext::new();
    Ok(lake
        .register(&ctx, crate::lake::OPS, "runs", "runs")
        .await?
        .map(|_| ctx))
}

async fn query(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    Ok(ctx.sql(sql).await?.collect().await?)
}

/// The latest `limit` runs (of one pipeline, or all), newest first, as a table.
pub async fn runs(lake: &Lake, pipeline: Option<&str>, limit: usize) -> Result<String> {
    let Some(s) = session(lake).await? else {
        return Ok("No runs recorded in this lake yet.".into());
    };
    let filter = pipeline
        .map(|p| format!("where pipeline = '{}'", p.replace('\'', "''")))
        .unwrap_or_default();
    let batches = query(
        &s,
        &format!(
            "select run_id, pipeline, trigger, status, substr(started_at, 1, 19), \
             cast(round(duration_s, 1) as varchar), files_ingested, files_skipped, files_rejected, \
             rows_loaded, rows_quarantined, steps, coalesce(error, '') \
             from runs {filter} order by started_at desc limit {limit}"
        ),
    )
    .await?;
    let mut t = comfy_table::Table::new();
    t.set_header([
        "run",
        "pipeline",
        "trigger",
        "status",
        "started",
        "seconds",
        "files in",
        "skipped",
        "rejected",
        "rows loaded",
        "quarantined",
        "steps",
        "error",
    ]);
    for mut row in cells(&batches)? {
        row[11] = steps_summary(&row[11]);
        t.add_row(row);
    }
    Ok(t.to_string())
}

/// The steps of the latest run recorded in the lake, as (step, seconds), in run order.
pub async fn last_run_steps(lake: &Lake) -> Result<Vec<(String, f64)>> {
    let Some(s) = session(lake).await? else {
        anyhow::bail!("no run is recorded in {}", lake.root());
    };
    let batches = query(
        &s,
        "select steps from runs order by started_at desc limit 1",
    )
    .await?;
    let rows = cells(&batches)?;
    let json = rows
        .first()
        .and_then(|r| r.first())
        .context("the runs table is empty")?;
    let steps: Vec<serde_json::Value> =
        serde_json::from_str(json).context("the latest run's steps are not JSON")?;
    Ok(steps
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap_or("?").to_string(),
                s["seconds"].as_f64().unwrap_or(0.0),
            )
        })
        .collect())
}

/// "reference 0.1s ok, ingest 2.3s ok, …" from the steps JSON.
fn steps_summary(json: &str) -> String {
    let steps: Vec<serde_json::Value> = serde_json::from_str(json).unwrap_or_default();
    steps
        .iter()
        .map(|s| {
            format!(
                "{} {:.1}s {}",
                s["step"].as_str().unwrap_or("?"),
                s["seconds"].as_f64().unwrap_or(0.0),
                s["status"].as_str().unwrap_or("?")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Each declared pipeline: its last run, whether one is running now, its next slot.
pub async fn status(project: &Path, lake: &Lake, now: DateTime<Utc>) -> Result<String> {
    let schedules = crate::schedule::load(project)?;
    let s = session(lake).await?;
    let mut t = comfy_table::Table::new();
    t.set_header([
        "pipeline",
        "last run",
        "status",
        "started",
        "running now",
        "schedule",
        "next due",
    ]);
    for name in crate::config::list(project)? {
        let last = match &s {
            Some(s) => cells(
                &query(
                    s,
                    &format!(
                        "select run_id, status, substr(started_at, 1, 19) from runs \
                         where pipeline = '{}' order by started_at desc limit 1",
                        name.replace('\'', "''")
                    ),
                )
                .await?,
            )?
            .pop(),
            None => None,
        }
        .unwrap_or_else(|| vec!["never".into(), String::new(), String::new()]);
        let lease = lake.lease_state(&name, now).await?;
        let running = match (&lease.holder, lease.live) {
            (Some(h), true) => format!("yes: {} on {} (pid {})", h.holder, h.host, h.pid),
            _ => "no".into(),
        };
        let schedule = schedules.iter().find(|x| x.pipeline == name);
        let (expr, next) = match schedule {
            Some(x) => (
                format!("{} ({})", x.expr, x.tz),
                x.next_after(now)?
                    .with_timezone(&x.tz)
                    .format("%Y-%m-%d %H:%M %Z")
                    .to_string(),
            ),
            None => ("none".into(), String::new()),
        };
        t.add_row(vec![
            name.clone(),
            last[0].clone(),
            last[1].clone(),
            last[2].clone(),
            running,
            expr,
            next,
        ]);
    }
    Ok(t.to_string())
}
