//! The audit log of the analysts' server: one JSON line per login failure and per statement
//! (who, from where, what with its literals redacted, the outcome, rows and time), appended
//! to a file and also logged as a `tracing` event with target `earlystart::audit`.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context as _, Result};
use serde::Serialize;

/// One audited event.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// UTC time the statement arrived.
    pub time: String,
    /// The authenticated user (or the name tried, for a login failure).
    pub user: String,
    /// The client's address.
    pub client: String,
    /// The statement with its literals replaced by `?`.
    pub statement: String,
    /// `ok`, `refused`, `error`, `timeout` or `login-failed`.
    pub outcome: String,
    /// Rows sent to the client.
    pub rows: u64,
    /// Wall time in milliseconds.
    pub ms: u64,
    /// The error shown to the client, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where audited events go.
#[derive(Debug, Default)]
pub struct AuditLog {
    file: Option<Mutex<File>>,
}

impl AuditLog {
    /// Appends to `path` (created when absent), or logs to `tracing` only.
    pub fn open(path: Option<&Path>) -> Result<Self> {
        let file = match path {
            Some(p) => Some(Mutex::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| format!("cannot open the audit log {}", p.display()))?,
            )),
            None => None,
        };
        Ok(Self { file })
    }

    /// Records one event. A failed write is logged, never fatal to the query.
    pub fn record(&self, entry: &Entry) {
        tracing::info!(
            target: "earlystart::audit",
            user = %entry.user,
            client = %entry.client,
            outcome = %entry.outcome,
            rows = entry.rows,
            ms = entry.ms,
            statement = %entry.statement,
            "statement"
        );
        if let Some(file) = &self.file {
            let line = serde_json::to_string(entry).expect("an audit entry serialises");
            let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = writeln!(f, "{line}") {
                tracing::error!(error = %e, "cannot append to the audit log");
            }
        }
    }
}
