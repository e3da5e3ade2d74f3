//! `earlystart server`: the lake over the Postgres wire protocol, so analysts reach it from
//! psql, DBeaver, Power BI, R and Python without copying data out.
//!
//! The protocol and result encoding are `datafusion-postgres` (on `pgwire`); the catalogue
//! queries BI tools send on connect are answered by its `pg_catalog` schema. earlystart adds
//! what a council needs around it: SCRAM password authentication ([`auth`]), TLS when a
//! certificate is configured, the read-only guard ([`guard`]), per-query memory and time
//! limits with a cap on concurrent queries ([`service`]), an audit log ([`audit`]), and a
//! periodic refresh so the figures follow the nightly run without a restart.

pub mod audit;
pub mod auth;
pub mod guard;
pub mod service;

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog;
use pgwire::api::auth::DefaultServerParameterProvider;
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::ScramAuth;
use pgwire::api::{ClientInfo, ErrorHandler, METADATA_USER, PgWireServerHandlers};
use pgwire::error::PgWireError;
use pgwire::tokio::tokio_rustls::TlsAcceptor;
use pgwire::tokio::tokio_rustls::rustls;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::lake::Lake;
use crate::metrics::session::{LakeSession, Limits};
use audit::{AuditLog, Entry};
use auth::Users;
use service::{Current, GuardedService, Shared};

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Address to listen on (`127.0.0.1:5433`; port 0 picks a free port).
    pub listen: String,
    /// Per-query memory pool and time limit.
    pub limits: Limits,
    /// Queries run at once; more wait for a slot (until their own deadline).
    pub max_queries: usize,
    /// Connections held at once; more are turned away.
    pub max_connections: usize,
    /// File of hashed passwords; else `EARLYSTART_SERVER_PASSWORD` for user `analyst`.
    pub password_file: Option<PathBuf>,
    /// TLS certificate chain and private key (PEM).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// JSON-lines audit log to append to.
    pub audit_log: Option<PathBuf>,
    /// How often the lake is re-read so new nightly figures appear.
    pub refresh: Duration,
}

/// Serves the lake until `shutdown` completes. Prints `listening on ADDR` once bound (the
/// tests start it on port 0 and read the port from that line).
pub async fn serve(
    project: &Path,
    lake: Lake,
    opts: ServerOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let users = Users::load(
        opts.password_file.as_deref(),
        std::env::var(auth::PASSWORD_ENV).ok(),
    )?;
    let tls = match &opts.tls {
        Some((cert, key)) => Some(tls_acceptor(cert, key)?),
        None => None,
    };
    let confidence = crate::metrics::params::MetricParams::load(&project.join("sql/metrics.toml"))?
        .stats
        .confidence;
    let first = open_session(&lake, confidence).await?;
    let shared = Arc::new(Shared::new(
        first,
        opts.limits,
        opts.max_queries,
        AuditLog::open(opts.audit_log.as_deref())?,
    ));
    let listener = TcpListener::bind(&opts.listen)
        .await
        .with_context(|| format!("cannot listen on {} (is the port in use?)", opts.listen))?;
    let addr = listener.local_addr()?;
    println!("listening on {addr}");
    info!(%addr, users = ?users.names(), tls = tls.is_some(), "earlystart server ready");

    tokio::spawn(refresh(lake, confidence, shared.clone(), opts.refresh));
    let connections = Arc::new(Semaphore::new(opts.max_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        let (socket, peer) = tokio::select! {
            _ = &mut shutdown => {
                info!("earlystart server stopping");
                return Ok(());
            }
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    warn!(error = %e, "cannot accept a connection");
                    continue;
                }
            },
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            warn!(%peer, max = opts.max_connections, "connection refused: too many connections");
            continue;
        };
        let handlers = ConnectionHandlers::new(shared.clone(), &users);
        let tls = tls.clone();
        tokio::spawn(async move {
            if let Err(e) = pgwire::tokio::process_socket(socket, tls, handlers).await {
                warn!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
}

/// The lake's tables, the statistics UDFs and `pg_catalog`, as served.
async fn open_session(lake: &Lake, confidence: f64) -> Result<Current> {
    // The session's own pool is not used for queries (each has its own); the limits here
    // only bound catalogue work.
    let session = LakeSession::open(lake, Limits::default(), confidence).await?;
    let ctx = Arc::new(session.ctx);
    setup_pg_catalog(&ctx, "earlystart", EmptyContextProvider)
        .map_err(|e| anyhow::anyhow!("cannot set up pg_catalog: {e}"))?;
    Ok(Current::new(ctx))
}

async fn refresh(lake: Lake, confidence: f64, shared: Arc<Shared>, every: Duration) {
    if every.is_zero() {
        return;
    }
    loop {
        tokio::time::sleep(every).await;
        match open_session(&lake, confidence).await {
            Ok(current) => {
                shared.replace(current);
                info!("lake re-read; new queries see the latest committed tables");
            }
            Err(e) => {
                warn!(error = %format!("{e:#}"), "cannot re-read the lake; serving the previous tables")
            }
        }
    }
}

fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read the TLS certificate {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: not a PEM certificate chain", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("{}: not a PEM private key", key.display()))?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS certificate and key do not match")?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The handlers of one connection (SCRAM keeps per-connection state).
struct ConnectionHandlers {
    service: Arc<GuardedService>,
    startup: Arc<SASLAuthStartupHandler<DefaultServerParameterProvider>>,
    errors: Arc<AuditErrors>,
}

impl ConnectionHandlers {
    fn new(shared: Arc<Shared>, users: &Users) -> Self {
        let scram = ScramAuth::new(Arc::new(users.clone()));
        let startup =
            SASLAuthStartupHandler::new(Arc::new(DefaultServerParameterProvider::default()))
                .with_scram(scram);
        Self {
            service: Arc::new(GuardedService::new(shared.clone())),
            startup: Arc::new(startup),
            errors: Arc::new(AuditErrors { shared }),
        }
    }
}

impl PgWireServerHandlers for ConnectionHandlers {
    fn simple_query_handler(&self) -> Arc<impl pgwire::api::query::SimpleQueryHandler> {
        self.service.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl pgwire::api::query::ExtendedQueryHandler> {
        self.service.clone()
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        self.startup.clone()
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        self.errors.clone()
    }
}

/// Audits failed logins (statement errors are audited where they happen).
struct AuditErrors {
    shared: Arc<Shared>,
}

impl ErrorHandler for AuditErrors {
    fn on_error<C>(&self, client: &C, error: &mut PgWireError)
    where
        C: ClientInfo,
    {
        if matches!(
            error,
            PgWireError::InvalidPassword(_) | PgWireError::InvalidScramMessage(_)
        ) {
            self.shared.audit.record(&Entry {
                time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                user: client
                    .metadata()
                    .get(METADATA_USER)
                    .cloned()
                    .unwrap_or_default(),
                client: client.socket_addr().to_string(),
                statement: String::new(),
                outcome: "login-failed".to_string(),
                rows: 0,
                ms: 0,
                error: Some(error.to_string()),
            });
        }
    }
}
