//! One run of a pipeline at a time, across processes and machines that share a lake.
//!
//! A lease is a sequence of generations under `_locks/<pipeline>/`, built only from
//! create-if-absent writes (which local disks, S3 and Azure all offer), so exactly one
//! contender wins each generation:
//!
//! ```text
//! _locks/nightly/0000000007.json           generation 7: holder, host, pid, ttl, acquired_at
//! _locks/nightly/0000000007.beat-000003    heartbeats while the run goes on (time inside)
//! _locks/nightly/0000000007.released       the holder finished
//! ```
//!
//! A generation is free when it was released, or when its last heartbeat is older than its
//! time to live (the holder died: a takeover). Taking it over means creating generation 8,
//! which only one contender can do.

use std::time::Duration;

use anyhow::{Context as _, Result};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::Lake;

/// Who holds a lease.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Holder {
    /// Free text naming the holder (run id, command).
    pub holder: String,
    /// Host name of the holder.
    pub host: String,
    /// Process id of the holder.
    pub pid: u32,
    /// When the generation was acquired.
    pub acquired_at: DateTime<Utc>,
    /// Seconds after the last heartbeat at which the lease is considered abandoned.
    pub ttl_s: u64,
}

/// Why a lease could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Another live holder has it.
    #[error(
        "pipeline {pipeline:?} is already running: {} on {} (pid {}) since {}; its lease expires at {expires_at} \
         unless renewed. Nothing was done; try again later.",
        holder.holder, holder.host, holder.pid, holder.acquired_at
    )]
    Held {
        /// The pipeline.
        pipeline: String,
        /// The current holder.
        holder: Holder,
        /// When the lease lapses without a new heartbeat.
        expires_at: DateTime<Utc>,
    },
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] anyhow::Error),
}

/// A held lease; heartbeats in the background until [`Lease::release`].
pub struct Lease {
    lake: Lake,
    prefix: String,
    generation: u64,
    heartbeat: JoinHandle<()>,
}

/// The state of a pipeline's lease, as `earlystart status` shows it.
#[derive(Debug, Clone)]
pub struct LeaseState {
    /// The latest generation (0 = never taken).
    pub generation: u64,
    /// Whether its holder released it.
    pub released: bool,
    /// The latest generation's holder, if any generation exists.
    pub holder: Option<Holder>,
    /// Whether that generation is still live (neither released nor expired).
    pub live: bool,
    /// When it lapses without a new heartbeat.
    pub expires_at: Option<DateTime<Utc>>,
}

fn generation_name(g: u64) -> String {
    format!("{g:010}")
}

impl Lake {
    /// Takes the lease of `pipeline` for `holder`, or says who has it. `ttl` is how long
    /// after its last heartbeat a silent holder is presumed dead.
    pub async fn acquire_lease(
        &self,
        pipeline: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, LeaseError> {
        let prefix = format!("_locks/{pipeline}");
        let state = self.lease_state(pipeline, Utc::now()).await?;
        if state.live {
            return Err(LeaseError::Held {
                pipeline: pipeline.to_string(),
                holder: state.holder.expect("a live lease has a holder"),
                expires_at: state.expires_at.expect("a live lease expires"),
            });
        }
        if let Some(dead) = state.holder.as_ref().filter(|_| !state.released) {
            warn!(
                pipeline,
                holder = dead.holder,
                host = dead.host,
                pid = dead.pid,
                "Taking over a lease whose holder stopped renewing it."
            );
        }
        let generation = state.generation;
        let next = generation + 1;
        let me = Holder {
            holder: holder.to_string(),
            host: hostname(),
            pid: std::process::id(),
            acquired_at: Utc::now(),
            ttl_s: ttl.as_secs().max(1),
        };
        let body = serde_json::to_vec(&me).context("lease body")?;
        let won = self
            .put_if_absent(
                &format!("{prefix}/{}.json", generation_name(next)),
                Bytes::from(body),
            )
            .await?;
        if !won {
            // Someone else created this generation between our read and our write.
            let state = self.lease_state(pipeline, Utc::now()).await?;
            return Err(LeaseError::Held {
                pipeline: pipeline.to_string(),
                expires_at: state.expires_at.unwrap_or_else(Utc::now),
                holder: state.holder.unwrap_or(me),
            });
        }
        info!(pipeline, generation = next, "Lease acquired.");
        let heartbeat = tokio::spawn(heartbeat(
            self.clone(),
            format!("{prefix}/{}", generation_name(next)),
            ttl,
        ));
        Ok(Lease {
            lake: self.clone(),
            prefix,
            generation: next,
            heartbeat,
        })
    }

    /// The latest generation of a pipeline's lease and whether it is live at `now`.
    pub async fn lease_state(&self, pipeline: &str, now: DateTime<Utc>) -> Result<LeaseState> {
        let prefix = format!("_locks/{pipeline}");
        let (generation, names) = self.latest_generation(&prefix).await?;
        if generation == 0 {
            return Ok(LeaseState {
                generation,
                released: false,
                holder: None,
                live: false,
                expires_at: None,
            });
        }
        let g = generation_name(generation);
        let body = self
            .get(&format!("{prefix}/{g}.json"))
            .await?
            .with_context(|| format!("lease {prefix}/{g}.json vanished"))?;
        let holder: Holder = serde_json::from_slice(&body)
            .with_context(|| format!("lease {prefix}/{g}.json is not a lease"))?;
        let released = names.iter().any(|n| *n == format!("{g}.released"));
        let mut last = holder.acquired_at;
        for n in names
            .iter()
            .filter(|n| n.starts_with(&format!("{g}.beat-")))
        {
            if let Some(body) = self.get(&format!("{prefix}/{n}")).await?
                && let Ok(t) = String::from_utf8_lossy(&body).parse::<DateTime<Utc>>()
            {
                last = last.max(t);
            }
        }
        let expires_at = last + chrono::Duration::seconds(holder.ttl_s as i64);
        Ok(LeaseState {
            generation,
            released,
            live: !released && expires_at > now,
            holder: Some(holder),
            expires_at: Some(expires_at),
        })
    }

    /// The highest generation under `prefix` and the names of that generation's objects.
    async fn latest_generation(&self, prefix: &str) -> Result<(u64, Vec<String>)> {
        let store = self.store();
        let listed: Vec<_> = store
            .list(Some(&self.object_path(&format!("{prefix}/"))))
            .try_collect()
            .await
            .with_context(|| format!("cannot list {prefix} in the lake"))?;
        let names: Vec<String> = listed
            .iter()
            .filter_map(|m| m.location.filename().map(str::to_string))
            .collect();
        let generation = names
            .iter()
            .filter_map(|n| n.split('.').next()?.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        let g = generation_name(generation);
        Ok((
            generation,
            names.into_iter().filter(|n| n.starts_with(&g)).collect(),
        ))
    }
}

impl Lease {
    /// The generation held.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Gives the lease up so the next run need not wait for it to expire.
    pub async fn release(self) -> Result<()> {
        self.heartbeat.abort();
        let path = format!(
            "{}/{}.released",
            self.prefix,
            generation_name(self.generation)
        );
        self.lake
            .put_if_absent(&path, Bytes::from(Utc::now().to_rfc3339()))
            .await?;
        Ok(())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Not released (an error path): stop renewing, so the lease lapses after its ttl.
        self.heartbeat.abort();
    }
}

async fn heartbeat(lake: Lake, base: String, ttl: Duration) {
    let every = (ttl / 3).max(Duration::from_millis(200));
    for beat in 1u64.. {
        tokio::time::sleep(every).await;
        let path = format!("{base}.beat-{beat:06}");
        if let Err(e) = lake
            .put_if_absent(&path, Bytes::from(Utc::now().to_rfc3339()))
            .await
        {
            warn!(error = %e, "Could not renew the lease; it lapses if this goes on.");
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown-host".into())
}
