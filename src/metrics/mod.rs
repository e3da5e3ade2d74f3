//! The metric catalogue: the analysts' `sql/` project run against the lake.
//!
//! ```text
//!  sql/metrics.toml ─► params ─┐
//!  sql/catalogue.toml ─────────┤
//!  sql/**/*.sql + _models.toml ─► project (order by reads) ─► run: build, test, publish
//!  lake curated/ + ops/ ─► session (read-only, memory pool, UDFs) ─┘        └► metrics/<model>
//! ```
//!
//! [`session`] is shared with `earlystart sql`, so analysts query what the metrics read.

pub mod catalogue;
pub mod cross_join;
pub mod distributed;
pub mod docs;
pub mod fingerprint;
pub mod incremental;
pub mod params;
pub mod project;
pub mod run;
pub mod session;
pub mod stats;
