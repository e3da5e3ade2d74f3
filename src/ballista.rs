//! Scale-out on Apache DataFusion Ballista: when one machine is not enough (a regional
//! partnership pooling a dozen councils), the metric catalogue's SQL runs on a Ballista
//! cluster instead of in-process. Nothing here is a scheduler of our own: `earlystart
//! ballista scheduler` and `earlystart ballista executor` start Ballista 55's own scheduler
//! and executor (the `ballista-scheduler` and `ballista-executor` crates), with the
//! statistics UDFs registered so that distributed plans that call them decode; the client
//! side is Ballista's `SessionContext::remote_with_state`.
//!
//! The lake must be storage that every process reaches under the same URL: a shared
//! filesystem path, or an object store (`s3://…`) with credentials in each process's
//! environment.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use ballista::prelude::SessionContextExt as _;
use ballista_core::JobId;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::serde::protobuf::{
    RuntimeStatsReport, ShuffleWritePartition, TaskColumnStats, WindowStateReport,
};
use ballista_executor::execution_engine::{
    DefaultExecutionEngine, ExecutionEngine, QueryStageExecutor,
};
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service_with_listener};
use datafusion::common::tree_node::{Transformed, TreeNode as _};
use datafusion::config::ConfigOptions;
use datafusion::execution::TaskContext;
use datafusion::execution::{FunctionRegistry as _, SessionState, SessionStateBuilder};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{ExecutionPlan, Partitioning};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use tracing::info;

/// Where a session's queries run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Engine {
    /// In this process (the default).
    #[default]
    Local,
    /// On a Ballista cluster: the scheduler's `host:port`.
    Ballista(String),
}

impl FromStr for Engine {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        if s == "local" {
            return Ok(Engine::Local);
        }
        match s.strip_prefix("ballista://") {
            Some(addr) if addr.contains(':') && !addr.ends_with(':') => {
                Ok(Engine::Ballista(addr.trim_end_matches('/').to_string()))
            }
            _ => bail!(
                "engine {s:?}: expected `local` or `ballista://HOST:PORT` (the Ballista \
                 scheduler, e.g. ballista://10.0.0.5:50050)"
            ),
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Engine::Local => f.write_str("local"),
            Engine::Ballista(addr) => write!(f, "ballista://{addr}"),
        }
    }
}

/// A session on the Ballista cluster at `addr`, with the settings, UDFs and runtime of
/// `state` (the client plans; the scheduler distributes; executors run the stages).
pub async fn remote_context(addr: &str, state: SessionState) -> Result<SessionContext> {
    use ballista_core::extension::SessionConfigExt as _;
    // Ballista 55's adaptive planner (on by default) returned the row of a global aggregate
    // once per partition of a UNION ALL's other branches (`select 'all', sum(x) from t union
    // all select k, sum(x) from t group by k`, a shape the catalogue uses for its totals),
    // so the classic stage planner is used. EARLYSTART_BALLISTA_SETTINGS (`key=value;…`)
    // can override this and set any other Ballista or DataFusion option.
    let settings = format!(
        "ballista.planner.adaptive.enabled=false;\
         ballista.client.grpc_max_message_size={MAX_MESSAGE_BYTES};{}",
        std::env::var("EARLYSTART_BALLISTA_SETTINGS").unwrap_or_default()
    );
    // Set on the configuration before the context is made: Ballista's query planner takes
    // its copy of the settings then, so a later SET did not reach it (results over 16 MiB
    // failed to arrive at county scale).
    let mut config = state.config().clone().upgrade_for_ballista();
    for setting in settings.split(';').filter(|s| !s.trim().is_empty()) {
        let (key, value) = setting.split_once('=').with_context(|| {
            format!("EARLYSTART_BALLISTA_SETTINGS: {setting:?} is not key=value")
        })?;
        config
            .options_mut()
            .set(key.trim(), value.trim())
            .with_context(|| format!("cannot set {key}"))?;
    }
    let state = SessionStateBuilder::new_from_existing(state)
        .with_config(config)
        .build();
    SessionContext::remote_with_state(&format!("df://{addr}"), state)
        .await
        .with_context(|| {
            format!("cannot reach the Ballista scheduler at {addr} (is `earlystart ballista scheduler` running there?)")
        })
}

/// Largest gRPC/Flight message between client, scheduler and executors (1 GiB).
const MAX_MESSAGE_BYTES: u32 = 1 << 30;

/// A session state with DataFusion's defaults and the statistics UDFs: what the scheduler
/// decodes plans with and what executors resolve function names against.
fn state_with_udfs(config: SessionConfig, confidence: f64) -> SessionState {
    let mut state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .with_physical_optimizer_rule(Arc::new(UnionBranchesInOwnStages))
        .build();
    // Added to the defaults (the builder's `with_scalar_functions` would replace them).
    for udf in crate::metrics::stats::udfs(confidence) {
        state
            .register_udf(Arc::new(udf))
            .expect("registering a scalar UDF cannot fail");
    }
    state
}

/// Runs a Ballista scheduler on `bind` until the process ends. Prints `listening on ADDR`
/// once bound (port 0 picks a free port).
pub async fn scheduler(bind: &str, confidence: f64) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    let addr: SocketAddr = listener.local_addr()?;
    let mut config = SchedulerConfig {
        bind_host: addr.ip().to_string(),
        external_host: addr.ip().to_string(),
        bind_port: addr.port(),
        ..SchedulerConfig::default()
    };
    config.override_session_builder = Some(Arc::new(move |c: SessionConfig| {
        Ok(state_with_udfs(c, confidence))
    }));
    let config = Arc::new(config);
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(|e| anyhow::anyhow!("cannot set up the Ballista cluster state: {e}"))?;
    let server = create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, config)
        .await
        .map_err(|e| anyhow::anyhow!("cannot start the Ballista scheduler: {e}"))?;
    println!("listening on {addr}");
    info!(%addr, "Ballista scheduler ready");
    start_grpc_service_with_listener(listener, server)
        .await
        .map_err(|e| anyhow::anyhow!("the Ballista scheduler stopped: {e}"))
}

/// How an executor joins a cluster.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler's `host:port`.
    pub scheduler: String,
    /// Host the executor binds and advertises.
    pub host: String,
    /// Arrow Flight port (shuffle data and results).
    pub port: u16,
    /// gRPC port (tasks from the scheduler).
    pub grpc_port: u16,
    /// Tasks run at once.
    pub concurrent_tasks: usize,
    /// Folder for shuffle files.
    pub work_dir: Option<String>,
}

/// Runs a Ballista executor until the process ends.
pub async fn executor(opts: ExecutorOptions, confidence: f64) -> Result<()> {
    let (scheduler_host, scheduler_port) = opts
        .scheduler
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
        .with_context(|| format!("--scheduler {:?}: expected HOST:PORT", opts.scheduler))?;
    if let Some(dir) = &opts.work_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the executor's work folder {dir}"))?;
    }
    let registry =
        BallistaFunctionRegistry::from(&state_with_udfs(SessionConfig::new(), confidence));
    let config = ExecutorProcessConfig {
        bind_host: opts.host.clone(),
        external_host: Some(opts.host.clone()),
        port: opts.port,
        grpc_port: opts.grpc_port,
        scheduler_host,
        scheduler_port,
        scheduler_connect_timeout_seconds: 30,
        vcores: opts.concurrent_tasks.max(1),
        work_dir: opts.work_dir.clone(),
        // Results and shuffle blocks travel as Flight messages; at county scale one model's
        // result batch was 69 MB, over Ballista's 16 MiB default, and the job failed.
        grpc_max_encoding_message_size: MAX_MESSAGE_BYTES,
        grpc_max_decoding_message_size: MAX_MESSAGE_BYTES,
        // Report within seconds, so a scheduler started moments before sees it at once.
        executor_heartbeat_interval_seconds: 5,
        override_function_registry: Some(Arc::new(registry)),
        override_execution_engine: Some(Arc::new(WithoutOperatorMetrics(
            DefaultExecutionEngine::new(),
        ))),
        ..ExecutorProcessConfig::default()
    };
    info!(scheduler = %opts.scheduler, port = opts.port, "Ballista executor starting");
    start_executor_process(Arc::new(config))
        .await
        .map_err(|e| anyhow::anyhow!("the Ballista executor stopped: {e}"))
}

/// Gives every branch of a UNION ALL its own stage, by a hash shuffle under it (a stage
/// boundary in Ballista's planner), so the union only ever reads shuffle output.
///
/// Ballista 55 runs a union inside a stage by handing each task a slice of the branches'
/// partitions; in our catalogue that slicing returned some branches' rows more than once
/// (`select count(*) from (a union all b union all c)` gave 7,576 rows where a, b and c
/// have 3,544, 465 and 15), and the models' unique-key tests failed. Shuffle readers are
/// sliced correctly, so reading every branch through one costs a shuffle and gives the
/// local result. Runs last among the scheduler's physical optimizer rules.
#[derive(Debug)]
struct UnionBranchesInOwnStages;

impl PhysicalOptimizerRule for UnionBranchesInOwnStages {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let partitions = config.execution.target_partitions.max(1);
        plan.transform_up(|node| {
            if !node.is::<UnionExec>() {
                return Ok(Transformed::no(node));
            }
            let children = node
                .children()
                .into_iter()
                .map(|child| {
                    if child.is::<RepartitionExec>() {
                        return Ok(child.clone());
                    }
                    if child.schema().fields().is_empty() {
                        // Nothing to hash (`select count(*)` over a union): a merge is a
                        // stage boundary too.
                        return Ok(Arc::new(CoalescePartitionsExec::new(child.clone()))
                            as Arc<dyn ExecutionPlan>);
                    }
                    let key: Arc<dyn PhysicalExpr> =
                        Arc::new(Column::new(child.schema().field(0).name(), 0));
                    Ok(Arc::new(RepartitionExec::try_new(
                        child.clone(),
                        Partitioning::Hash(vec![key], partitions),
                    )?) as Arc<dyn ExecutionPlan>)
                })
                .collect::<datafusion::error::Result<Vec<_>>>()?;
            let options = ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute);
            Ok(Transformed::yes(node.replace_children(children, options)?))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "union_branches_in_own_stages"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Ballista 55's default execution engine, except that tasks report no per-operator
/// metrics. With them, the scheduler rejected the status of some tasks of our plans
/// ("task metrics array size 16 does not equal with the stage metrics array size 15") and
/// the job never finished; an empty metrics list is accepted as "not collected". Only the
/// scheduler's per-operator statistics are lost; task results and shuffle data are as
/// before.
struct WithoutOperatorMetrics(DefaultExecutionEngine);

impl ExecutionEngine for WithoutOperatorMetrics {
    fn create_query_stage_exec(
        &self,
        job_id: JobId,
        stage_id: usize,
        task_id: usize,
        global_output_partition_ids: Vec<usize>,
        plan: Arc<dyn ExecutionPlan>,
        work_dir: &str,
        config: &SessionConfig,
    ) -> datafusion::error::Result<Arc<dyn QueryStageExecutor>> {
        let inner = self.0.create_query_stage_exec(
            job_id,
            stage_id,
            task_id,
            global_output_partition_ids,
            plan,
            work_dir,
            config,
        )?;
        Ok(Arc::new(StageWithoutMetrics(inner)))
    }
}

#[derive(Debug)]
struct StageWithoutMetrics(Arc<dyn QueryStageExecutor>);

impl fmt::Display for StageWithoutMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[async_trait::async_trait]
impl QueryStageExecutor for StageWithoutMetrics {
    async fn execute_query_stage(
        &self,
        task_id: usize,
        context: Arc<TaskContext>,
    ) -> datafusion::error::Result<Vec<ShuffleWritePartition>> {
        self.0.execute_query_stage(task_id, context).await
    }

    fn collect_plan_metrics(&self) -> Vec<MetricsSet> {
        Vec::new()
    }

    fn collect_runtime_stats_reports(&self) -> Vec<RuntimeStatsReport> {
        self.0.collect_runtime_stats_reports()
    }

    fn collect_window_state_reports(&self) -> datafusion::error::Result<Vec<WindowStateReport>> {
        self.0.collect_window_state_reports()
    }

    fn collect_column_stats(&self) -> Vec<TaskColumnStats> {
        self.0.collect_column_stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_parse_and_print() {
        assert_eq!("local".parse::<Engine>().unwrap(), Engine::Local);
        let e: Engine = "ballista://10.0.0.5:50050".parse().unwrap();
        assert_eq!(e, Engine::Ballista("10.0.0.5:50050".into()));
        assert_eq!(e.to_string(), "ballista://10.0.0.5:50050");
        for bad in ["ballista://host", "spark://h:1", "ballista://h:"] {
            let err = bad.parse::<Engine>().unwrap_err().to_string();
            assert!(err.contains("ballista://HOST:PORT"), "{err}");
        }
    }
}
