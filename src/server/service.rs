//! The query handlers of the analysts' server. They put earlystart's rules around
//! `datafusion-postgres` (which speaks the wire protocol and encodes results):
//!
//! * every statement is classified first ([`super::guard`]) and anything that is not a read
//!   or a client setting is refused, in both the simple and the extended protocol;
//! * each query runs in its own session context that shares the lake's tables but has its
//!   own memory pool (the per-query limit) and a deadline that also covers streaming the
//!   rows, and waits for one of a fixed number of query slots (the concurrency cap);
//! * every statement, refused or run, goes to the audit log with its literals redacted.

use std::fmt::Debug;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::memory_pool::GreedyMemoryPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionContext;
use datafusion_postgres::DfSessionService;
use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use futures::{Sink, Stream};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, Response};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, METADATA_USER, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::data::DataRow;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

use super::audit::{AuditLog, Entry};
use super::guard::{Class, classify, redact};
use crate::metrics::session::Limits;

/// The statement type `datafusion-postgres` stores for the extended protocol.
pub type DfStatement = <DfSessionService as ExtendedQueryHandler>::Statement;

/// The session the server currently serves: the lake's tables at the versions read when it
/// was opened. Replaced as a whole when the lake is refreshed.
pub struct Current {
    /// Tables, UDFs and the `pg_catalog` schema.
    pub ctx: Arc<SessionContext>,
    /// Answers session statements and parses for the extended protocol.
    service: Arc<DfSessionService>,
}

impl Current {
    /// Wraps a session context.
    pub fn new(ctx: Arc<SessionContext>) -> Self {
        let service = Arc::new(DfSessionService::new(ctx.clone()));
        Self { ctx, service }
    }
}

/// What every connection shares.
pub struct Shared {
    current: RwLock<Arc<Current>>,
    limits: Limits,
    slots: Arc<Semaphore>,
    /// The audit log.
    pub audit: AuditLog,
}

impl Shared {
    /// The shared state over a first session.
    pub fn new(current: Current, limits: Limits, max_queries: usize, audit: AuditLog) -> Self {
        Self {
            current: RwLock::new(Arc::new(current)),
            limits,
            slots: Arc::new(Semaphore::new(max_queries.max(1))),
            audit,
        }
    }

    /// The session now being served.
    pub fn current(&self) -> Arc<Current> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Serves a newer session from now on (queries already running finish on the old one).
    pub fn replace(&self, current: Current) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(current);
    }

    /// A context for one query: the served tables and settings, its own memory pool.
    fn query_service(&self) -> PgWireResult<DfSessionService> {
        let current = self.current();
        let base = current.ctx.runtime_env();
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(GreedyMemoryPool::new(self.limits.memory_bytes)))
            .with_object_store_registry(base.object_store_registry.clone())
            .build_arc()
            .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
        let mut state = SessionStateBuilder::new_from_existing(current.ctx.state())
            .with_runtime_env(runtime)
            .build();
        // A sort keeps this much back for merging its spilled runs: an eighth of the pool,
        // so a small per-query limit still leaves room for the sort itself.
        let execution = &mut state.config_mut().options_mut().execution;
        execution.sort_spill_reservation_bytes = execution
            .sort_spill_reservation_bytes
            .min(self.limits.memory_bytes / 8);
        Ok(DfSessionService::new(Arc::new(
            SessionContext::new_with_state(state),
        )))
    }

    /// The query's deadline: the server's limit, or the client's `statement_timeout` when
    /// shorter.
    fn deadline<C: ClientInfo + ?Sized>(&self, client: &C) -> Duration {
        let client_limit = client
            .metadata()
            .get("statement_timeout_ms")
            .and_then(|ms| ms.parse::<u64>().ok())
            .map(Duration::from_millis);
        client_limit.map_or(self.limits.timeout, |c| c.min(self.limits.timeout))
    }

    fn entry<C: ClientInfo + ?Sized>(&self, client: &C, sql: &str) -> Entry {
        Entry {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            user: client
                .metadata()
                .get(METADATA_USER)
                .cloned()
                .unwrap_or_default(),
            client: client.socket_addr().to_string(),
            statement: redact(sql),
            outcome: "ok".to_string(),
            rows: 0,
            ms: 0,
            error: None,
        }
    }

    /// Waits for a query slot, at most until the query's deadline.
    async fn slot(&self, wait: Duration) -> PgWireResult<OwnedSemaphorePermit> {
        match tokio::time::timeout(wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(user_error(
                "53000",
                "the server is running its maximum number of queries and none finished in \
                 time; try again later",
            )),
        }
    }
}

/// The simple- and extended-protocol handler of one connection.
pub struct GuardedService {
    shared: Arc<Shared>,
    parser: Arc<GuardedParser>,
}

impl GuardedService {
    /// A handler over the shared state.
    pub fn new(shared: Arc<Shared>) -> Self {
        let parser = Arc::new(GuardedParser {
            shared: shared.clone(),
        });
        Self { shared, parser }
    }
}

#[async_trait]
impl SimpleQueryHandler for GuardedService {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let run = Run::start(&self.shared, client, query);
        let statements = match PostgresCompatibilityParser::new().parse(query) {
            Ok(s) => s,
            Err(e) => return Err(run.failed("error", PgWireError::ApiError(Box::new(e)))),
        };
        let classes: Vec<Class> = statements.iter().map(classify).collect();
        if let Some(reason) = classes.iter().find_map(|c| match c {
            Class::Refused(r) => Some(r.clone()),
            _ => None,
        }) {
            return Err(run.failed("refused", user_error("25006", &reason)));
        }
        if !classes.contains(&Class::Query) {
            let current = self.shared.current();
            let result =
                SimpleQueryHandler::do_query(current.service.as_ref(), client, query).await;
            return run.finish(result);
        }
        let wait = self.shared.deadline(client);
        let deadline = Instant::now() + wait;
        let permit = match self.shared.slot(wait).await {
            Ok(p) => p,
            Err(e) => return Err(run.failed("refused", e)),
        };
        let service = self.shared.query_service()?;
        let result = tokio::time::timeout_at(
            deadline.into(),
            SimpleQueryHandler::do_query(&service, client, query),
        )
        .await;
        let responses = match result {
            Err(_) => return Err(run.failed("timeout", timeout_error(wait))),
            Ok(Err(e)) => return Err(run.failed("error", e)),
            Ok(Ok(r)) => r,
        };
        let tracker = run.track(permit);
        Ok(responses
            .into_iter()
            .map(|r| tracker.limit(r, deadline, wait))
            .collect())
    }
}

#[async_trait]
impl ExtendedQueryHandler for GuardedService {
    type Statement = DfStatement;
    type QueryParser = GuardedParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let (sql, parsed) = &portal.statement.statement;
        let run = Run::start(&self.shared, client, sql);
        let class = parsed
            .as_ref()
            .map_or(Class::Session, |(statement, _)| classify(statement));
        match class {
            Class::Refused(reason) => Err(run.failed("refused", user_error("25006", &reason))),
            Class::Session => {
                let current = self.shared.current();
                let result = ExtendedQueryHandler::do_query(
                    current.service.as_ref(),
                    client,
                    portal,
                    max_rows,
                )
                .await;
                run.finish(result.map(|r| vec![r])).map(|mut r| r.remove(0))
            }
            Class::Query => {
                let wait = self.shared.deadline(client);
                let deadline = Instant::now() + wait;
                let permit = match self.shared.slot(wait).await {
                    Ok(p) => p,
                    Err(e) => return Err(run.failed("refused", e)),
                };
                let service = self.shared.query_service()?;
                let result = tokio::time::timeout_at(
                    deadline.into(),
                    ExtendedQueryHandler::do_query(&service, client, portal, max_rows),
                )
                .await;
                match result {
                    Err(_) => Err(run.failed("timeout", timeout_error(wait))),
                    Ok(Err(e)) => Err(run.failed("error", e)),
                    Ok(Ok(response)) => Ok(run.track(permit).limit(response, deadline, wait)),
                }
            }
        }
    }
}

/// Parses for the extended protocol with `datafusion-postgres`'s parser, refusing what the
/// guard refuses at parse time (before any plan could run).
pub struct GuardedParser {
    shared: Arc<Shared>,
}

#[async_trait]
impl QueryParser for GuardedParser {
    type Statement = DfStatement;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        // Classify before planning: a refused statement is never planned.
        if let Ok(statements) = PostgresCompatibilityParser::new().parse(sql)
            && let Some(Class::Refused(reason)) = statements.first().map(classify)
        {
            let run = Run::start(&self.shared, client, sql);
            return Err(run.failed("refused", user_error("25006", &reason)));
        }
        let current = self.shared.current();
        let parser = ExtendedQueryHandler::query_parser(current.service.as_ref());
        let parsed = parser.parse_sql(client, sql, types).await?;
        if let Some((_, Some((statement, _)))) = &parsed
            && let Class::Refused(reason) = classify(statement)
        {
            let run = Run::start(&self.shared, client, sql);
            return Err(run.failed("refused", user_error("25006", &reason)));
        }
        Ok(parsed)
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        let current = self.shared.current();
        ExtendedQueryHandler::query_parser(current.service.as_ref()).get_parameter_types(stmt)
    }

    fn get_result_schema(
        &self,
        stmt: &Self::Statement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        let current = self.shared.current();
        ExtendedQueryHandler::query_parser(current.service.as_ref())
            .get_result_schema(stmt, column_format)
    }
}

/// One statement on its way to the audit log.
struct Run {
    shared: Arc<Shared>,
    entry: Entry,
    started: Instant,
}

impl Run {
    fn start<C: ClientInfo + ?Sized>(shared: &Arc<Shared>, client: &C, sql: &str) -> Self {
        Self {
            shared: shared.clone(),
            entry: shared.entry(client, sql),
            started: Instant::now(),
        }
    }

    fn failed(mut self, outcome: &str, error: PgWireError) -> PgWireError {
        self.entry.outcome = outcome.to_string();
        self.entry.error = Some(message(&error));
        self.entry.ms = self.started.elapsed().as_millis() as u64;
        self.shared.audit.record(&self.entry);
        error
    }

    fn finish(self, result: PgWireResult<Vec<Response>>) -> PgWireResult<Vec<Response>> {
        match result {
            Ok(r) => {
                self.record(0);
                Ok(r)
            }
            Err(e) => Err(self.failed("error", e)),
        }
    }

    fn record(mut self, rows: u64) {
        self.entry.rows = rows;
        self.entry.ms = self.started.elapsed().as_millis() as u64;
        self.shared.audit.record(&self.entry);
    }

    fn track(self, permit: OwnedSemaphorePermit) -> Arc<Tracker> {
        Arc::new(Tracker {
            run: Mutex::new(Some(self)),
            rows: AtomicU64::new(0),
            _permit: permit,
        })
    }
}

/// Follows a query's result streams: counts rows, holds the query slot until the last row
/// is sent, and writes the audit entry when the streams are dropped.
struct Tracker {
    run: Mutex<Option<Run>>,
    rows: AtomicU64,
    _permit: OwnedSemaphorePermit,
}

impl Tracker {
    fn fail(&self, outcome: &str, error: &PgWireError) {
        if let Some(run) = self.run.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            run.entry.outcome = outcome.to_string();
            run.entry.error = Some(message(error));
        }
    }

    /// Puts the deadline and the row count on a query response.
    fn limit(self: &Arc<Self>, response: Response, deadline: Instant, wait: Duration) -> Response {
        match response {
            Response::Query(mut query) => {
                let rows =
                    std::mem::replace(&mut query.data_rows, Box::pin(futures::stream::empty()));
                query.data_rows = Box::pin(Limited {
                    rows,
                    deadline: Box::pin(tokio::time::sleep_until(deadline.into())),
                    limit: wait,
                    tracker: self.clone(),
                    done: false,
                });
                Response::Query(query)
            }
            other => other,
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        if let Some(run) = self.run.lock().unwrap_or_else(|e| e.into_inner()).take() {
            run.record(self.rows.load(Ordering::Relaxed));
        }
    }
}

/// A result stream that ends with a `statement timeout` error at the query's deadline.
struct Limited {
    rows: Pin<Box<dyn Stream<Item = PgWireResult<DataRow>> + Send>>,
    deadline: Pin<Box<Sleep>>,
    limit: Duration,
    tracker: Arc<Tracker>,
    done: bool,
}

impl Stream for Limited {
    type Item = PgWireResult<DataRow>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.done = true;
            let error = timeout_error(this.limit);
            this.tracker.fail("timeout", &error);
            return Poll::Ready(Some(Err(error)));
        }
        match this.rows.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(row))) => {
                this.tracker.rows.fetch_add(1, Ordering::Relaxed);
                Poll::Ready(Some(Ok(row)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.done = true;
                this.tracker.fail("error", &e);
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The text a client sees for an error (without pgwire's wrapping).
fn message(error: &PgWireError) -> String {
    match error {
        PgWireError::UserError(info) => info.message.clone(),
        other => other.to_string(),
    }
}

fn user_error(code: &str, message: &str) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_string(),
        code.to_string(),
        message.to_string(),
    )))
}

fn timeout_error(limit: Duration) -> PgWireError {
    user_error(
        "57014",
        &format!(
            "canceling statement due to statement timeout ({} s; the server's --timeout or \
             the client's statement_timeout)",
            limit.as_secs_f64()
        ),
    )
}
