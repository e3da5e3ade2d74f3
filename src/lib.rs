//! earlystart: council extracts in, a pseudonymised Delta Lake out, metrics and reports on top.
//!
//! Bird's-eye view of one run (`earlystart run nightly`):
//!
//! ```text
//!  pipelines/nightly.toml ─► config ─► Pipeline
//!  extracts folder ──► pipeline::run ─► sources::ingest (validate, pseudonymise, resolve geography)
//!                                  ├──► lake: curated Delta tables, quarantine, warnings, runs
//!                                  └──► identity::linkage ─► person_link
//!  sql/ ─► metrics::run (models in the order of what they read, tested, published) ─► metrics/
//! ```
//!
//! Module map: [`config`] reads `pipelines/*.toml`; [`sources`] turns bytes into batches and
//! issues (no I/O); [`reference`] loads code lists and public geography files; [`identity`]
//! checks identifiers, pseudonymises and links; [`lake`] is the only module that touches
//! storage; [`pipeline`] runs the steps; [`metrics`] builds the `sql/` catalogue and holds the
//! analysts' read-only session ([`sqlshell`] is its prompt); [`schedule`], [`history`] and
//! [`notify`] look after unattended runs; [`generate`] writes synthetic extracts; [`cli`] is
//! the command line.

pub mod ballista;
pub mod bench;
pub mod cli;
pub mod config;
pub mod generate;
pub mod history;
pub mod identity;
pub mod lake;
pub mod memory;
pub mod metrics;
pub mod notify;
pub mod pipeline;
pub mod reference;
pub mod report;
pub mod rules;
pub mod schedule;
pub mod server;
pub mod sources;
pub mod sqlshell;
