//! `earlystart serve`: runs each declared pipeline on its cron schedule.
//!
//! Schedules are evaluated by `croner` in the pipeline's time zone (Europe/London by
//! default), so "0 2 * * *" is 02:00 on the wall clock in both GMT and BST; a time that does
//! not exist on the night the clocks go forward runs at the first valid time after the gap,
//! and a time that happens twice when they go back runs once. The clock is a trait so tests
//! can drive a schedule through months without sleeping.

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr as _;

use anyhow::{Context as _, Result};
use chrono::{DateTime, Timelike as _, Utc};
use chrono_tz::Tz;
use tokio::sync::watch;
use tracing::{error, info};

/// A boxed future, for the two small traits below.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One pipeline's schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Pipeline name.
    pub pipeline: String,
    /// The cron expression as written.
    pub expr: String,
    /// Time zone it is evaluated in.
    pub tz: Tz,
    cron: croner::Cron,
}

impl Schedule {
    /// Parses a cron expression (5 or 6 fields) for `pipeline`.
    pub fn new(pipeline: &str, expr: &str, tz: Tz) -> Result<Self> {
        let cron = croner::Cron::from_str(expr)
            .with_context(|| format!("pipeline {pipeline}: invalid schedule {expr:?}"))?;
        Ok(Self {
            pipeline: pipeline.into(),
            expr: expr.into(),
            tz,
            cron,
        })
    }

    /// The first time strictly after `after` at which the pipeline is due.
    pub fn next_after(&self, after: DateTime<Utc>) -> Result<DateTime<Utc>> {
        // Whole seconds: schedules have no finer grain, and reports read better.
        let after = after.with_nanosecond(0).unwrap_or(after);
        let local = after.with_timezone(&self.tz);
        let next = self
            .cron
            .find_next_occurrence(&local, false)
            .with_context(|| format!("schedule {:?} has no next time", self.expr))?;
        Ok(next.with_timezone(&Utc))
    }
}

/// The schedules of every pipeline under `project/pipelines` that declares one.
pub fn load(project: &std::path::Path) -> Result<Vec<Schedule>> {
    let mut out = Vec::new();
    for name in crate::config::list(project)? {
        let p = crate::config::load_or_report(project, &name)?;
        if let Some(expr) = &p.schedule {
            out.push(Schedule::new(&name, expr, p.timezone)?);
        }
    }
    Ok(out)
}

/// Where the scheduler gets the time from.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
    /// Completes at `when` (at once if it has passed).
    fn sleep_until(&self, when: DateTime<Utc>) -> BoxFuture<'_, ()>;
}

/// The system clock. Sleeps in slices of at most a minute and re-reads the wall clock, so
/// a suspended machine or a clock correction does not make a run late by the difference.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, when: DateTime<Utc>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            loop {
                let left = when - Utc::now();
                if left <= chrono::Duration::zero() {
                    return;
                }
                let slice = left
                    .to_std()
                    .unwrap_or_default()
                    .min(std::time::Duration::from_secs(60));
                tokio::time::sleep(slice).await;
            }
        })
    }
}

/// What the scheduler starts when a pipeline is due.
pub trait Runner: Send + Sync {
    /// Runs `pipeline` once; returns its exit code.
    fn run<'a>(&'a self, pipeline: &'a str) -> BoxFuture<'a, Result<i32>>;
}

/// One run the scheduler started.
#[derive(Debug, Clone, PartialEq)]
pub struct Fired {
    /// Pipeline.
    pub pipeline: String,
    /// The slot it was due at.
    pub due: DateTime<Utc>,
    /// When it actually started.
    pub started: DateTime<Utc>,
    /// Exit code (2 when the runner itself failed).
    pub code: i32,
}

/// Runs every schedule until `shutdown` turns true (or `limit` runs have started). A run
/// in progress is finished before shutting down: commits are atomic, so abandoning one
/// would be safe too, but finishing it means the night's work is not lost. A slot missed
/// while the machine was off or a run overran starts once, at once, not once per missed
/// slot.
pub async fn serve(
    schedules: &[Schedule],
    clock: &dyn Clock,
    runner: &dyn Runner,
    mut shutdown: watch::Receiver<bool>,
    limit: Option<usize>,
) -> Result<Vec<Fired>> {
    let mut fired = Vec::new();
    if schedules.is_empty() {
        info!("No pipeline declares a schedule; nothing to serve.");
        return Ok(fired);
    }
    let start = clock.now();
    let mut next: Vec<DateTime<Utc>> = schedules
        .iter()
        .map(|s| s.next_after(start))
        .collect::<Result<_>>()?;
    for (s, at) in schedules.iter().zip(&next) {
        info!(pipeline = s.pipeline, schedule = s.expr, tz = %s.tz, next = %at.with_timezone(&s.tz), "Scheduled.");
    }
    loop {
        if *shutdown.borrow() || limit.is_some_and(|l| fired.len() >= l) {
            break;
        }
        let (i, due) = next
            .iter()
            .copied()
            .enumerate()
            .min_by_key(|(_, t)| *t)
            .expect("at least one schedule");
        tokio::select! {
            _ = clock.sleep_until(due) => {}
            _ = shutdown.changed() => continue,
        }
        let s = &schedules[i];
        let started = clock.now();
        info!(pipeline = s.pipeline, due = %due.with_timezone(&s.tz), "Pipeline due; starting.");
        let code = match runner.run(&s.pipeline).await {
            Ok(code) => code,
            Err(e) => {
                error!(
                    pipeline = s.pipeline,
                    error = format!("{e:#}"),
                    "Scheduled run failed."
                );
                2
            }
        };
        fired.push(Fired {
            pipeline: s.pipeline.clone(),
            due,
            started,
            code,
        });
        next[i] = s.next_after(due.max(clock.now()))?;
        info!(pipeline = s.pipeline, code, next = %next[i].with_timezone(&s.tz), "Run finished.");
    }
    info!("Scheduler stopped.");
    Ok(fired)
}
