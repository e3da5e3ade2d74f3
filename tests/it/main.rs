//! The one integration-test binary (matklad's layout): one module per area.

mod ballista;
mod cli;
mod config;
mod crash;
mod engagement;
mod external;
mod ingest;
mod kill;
mod lake;
mod lease;
mod metrics;
mod reports;
mod rules;
mod schedule;
mod server;
mod social_care;
mod sql;
mod support;
mod vfm;
mod xlsx;
