//! The processors of a broker: deployed, persisted, started with the broker, paused,
//! resumed, redeployed and deleted. Each runs one supervised task per input partition.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use fjord_engine::{Engine, PartitionIndex, validate_topic_name};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::logs::{LogBuffer, LogEntry};
use crate::pool::CallPool;
use crate::report::{TaskReport, TaskState};
use crate::spec::{ErrorPolicy, ProcessorSpec};
use crate::state::StateStore;
use crate::store::{Store, Stored, module_file};
use crate::task::supervise;
use crate::task_call::{TaskContext, TransformFactory};

/// Longest processor name: its changelog topic's name must stay within Kafka's 249.
const NAME_BYTES_MAX: usize = 200;

/// Compiles modules into something tasks can start: the Wasm runtime, in the broker.
pub trait ModuleLoader: Send + Sync {
    /// An error says what is wrong with the module (not a component, a newer world, ...).
    fn load(&self, module: &[u8]) -> std::result::Result<Arc<dyn TransformFactory>, String>;
}

/// A processor as `list` and `describe` show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Description {
    pub spec: ProcessorSpec,
    /// running, paused, failed (some task failed), starting
    pub state: &'static str,
    pub module_bytes: usize,
    pub module_crc32c: u32,
    pub deployed_at_ms: i64,
    pub records_in: u64,
    pub records_out: u64,
    pub errors: u64,
    pub lag: i64,
    pub tasks: Vec<TaskDescription>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TaskDescription {
    pub partition: i32,
    pub state: &'static str,
    pub committed_offset: i64,
    pub lag: i64,
    pub records_in: u64,
    pub records_out: u64,
    pub errors: u64,
    pub last_error: Option<String>,
}

struct Deployed {
    stored: Stored,
    factory: Arc<dyn TransformFactory>,
    logs: Arc<LogBuffer>,
    reports: Vec<Arc<Mutex<TaskReport>>>,
    running: Option<Running>,
}

struct Running {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Result<()>>>,
}

/// Every processor of the broker.
pub struct Processors {
    engine: Arc<Engine>,
    loader: Arc<dyn ModuleLoader>,
    pool: CallPool,
    store: Store,
    deployed: tokio::sync::Mutex<BTreeMap<String, Deployed>>,
}

impl std::fmt::Debug for Processors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processors").finish_non_exhaustive()
    }
}

impl Processors {
    /// Loads the stored deployments and starts those not paused. One that no longer loads
    /// (its module refused by this host) is logged and left out.
    pub async fn open(
        engine: Arc<Engine>,
        loader: Arc<dyn ModuleLoader>,
        pool: CallPool,
        directory: PathBuf,
    ) -> Result<Arc<Processors>> {
        let store = Store::new(directory);
        let processors = Arc::new(Processors {
            engine,
            loader,
            pool,
            store: store.clone(),
            deployed: Default::default(),
        });
        let mut deployed = processors.deployed.lock().await;
        for (stored, module) in store.load_all()? {
            let name = stored.spec.name.clone();
            let factory = match processors.loader.load(&module) {
                Ok(factory) => factory,
                Err(message) => {
                    tracing::error!(processor = %name, %message, "a stored processor's module no longer loads");
                    continue;
                }
            };
            let mut entry = Deployed {
                stored,
                factory,
                logs: Arc::default(),
                reports: Vec::new(),
                running: None,
            };
            if !entry.stored.paused
                && let Err(error) = processors.start(&mut entry)
            {
                // One processor that cannot start (its input deleted, say) does not keep
                // the broker from starting: it is listed as failed until resumed.
                tracing::error!(processor = %name, %error, "a stored processor cannot start");
                let now_ms = processors.engine.clock().now_ms();
                let message = format!("cannot start: {error}");
                entry
                    .logs
                    .push(now_ms, -1, crate::transform::LogLevel::Error, message);
            }
            deployed.insert(name, entry);
        }
        drop(deployed);
        Ok(processors)
    }

    /// Deploys `spec` with `module`, or redeploys it: the old tasks commit what they hold
    /// and stop, and the new module goes on from their positions and state.
    pub async fn deploy(&self, spec: ProcessorSpec, module: &[u8]) -> Result<Description> {
        validate(&spec)?;
        let factory = self
            .loader
            .load(module)
            .map_err(|message| Error::Module { message })?;
        self.check_init(&factory, &spec).await?;
        crate::topics::prepare(&self.engine, &spec).await?;
        let (module_file, module_crc32c) = module_file(module);
        let stored = Stored {
            spec: spec.clone(),
            paused: false,
            module_file,
            module_crc32c,
            module_bytes: module.len(),
            deployed_at_ms: self.engine.clock().now_ms(),
        };
        let mut deployed = self.deployed.lock().await;
        let logs = match deployed.remove(&spec.name) {
            Some(mut previous) => {
                stop(&mut previous).await;
                previous.logs
            }
            None => Arc::default(),
        };
        self.store.save(&stored, Some(module))?;
        let mut entry = Deployed {
            stored,
            factory,
            logs,
            reports: Vec::new(),
            running: None,
        };
        // Kept (as failed) even when its tasks cannot start, like a stored one.
        let started = self.start(&mut entry);
        let description = describe(&entry);
        deployed.insert(spec.name.clone(), entry);
        started?;
        tracing::info!(processor = %spec.name, input = %spec.input, "processor deployed");
        Ok(description)
    }

    pub async fn list(&self) -> Vec<Description> {
        self.deployed.lock().await.values().map(describe).collect()
    }

    pub async fn describe(&self, name: &str) -> Result<Description> {
        let deployed = self.deployed.lock().await;
        deployed
            .get(name)
            .map(describe)
            .ok_or_else(|| unknown(name))
    }

    /// The last `count` log lines of a processor, oldest first.
    pub async fn logs(&self, name: &str, count: usize) -> Result<Vec<LogEntry>> {
        let deployed = self.deployed.lock().await;
        deployed
            .get(name)
            .map(|entry| entry.logs.tail(count))
            .ok_or_else(|| unknown(name))
    }

    /// Stops the tasks after they commit what they hold; the pause survives a restart.
    pub async fn pause(&self, name: &str) -> Result<Description> {
        let mut deployed = self.deployed.lock().await;
        let entry = deployed.get_mut(name).ok_or_else(|| unknown(name))?;
        stop(entry).await;
        entry.stored.paused = true;
        self.store.save(&entry.stored, None)?;
        Ok(describe(entry))
    }

    /// Starts a paused processor again, or restarts one whose tasks failed.
    pub async fn resume(&self, name: &str) -> Result<Description> {
        let mut deployed = self.deployed.lock().await;
        let entry = deployed.get_mut(name).ok_or_else(|| unknown(name))?;
        stop(entry).await;
        // The input may have gained partitions: the changelog follows.
        crate::topics::prepare(&self.engine, &entry.stored.spec).await?;
        entry.stored.paused = false;
        self.store.save(&entry.stored, None)?;
        self.start(entry)?;
        Ok(describe(entry))
    }

    /// Stops and forgets a processor. Its changelog topic and group stay (delete them like
    /// any topic or group), so a processor deployed again under the name goes on from them.
    pub async fn delete(&self, name: &str) -> Result<()> {
        let mut deployed = self.deployed.lock().await;
        let mut entry = deployed.remove(name).ok_or_else(|| unknown(name))?;
        stop(&mut entry).await;
        self.store.remove(name)?;
        tracing::info!(processor = %name, "processor deleted");
        Ok(())
    }

    /// Stops every processor (each task commits what it holds first).
    pub async fn close(&self) {
        let mut deployed = self.deployed.lock().await;
        for entry in deployed.values_mut() {
            stop(entry).await;
        }
    }

    fn start(&self, entry: &mut Deployed) -> Result<()> {
        let spec = Arc::new(entry.stored.spec.clone());
        let partitions = self.engine.require_topic(&spec.input)?.partition_count();
        let context = TaskContext {
            engine: Arc::clone(&self.engine),
            pool: self.pool.clone(),
            spec,
            factory: Arc::clone(&entry.factory),
            logs: Arc::clone(&entry.logs),
        };
        let (stop, stopped) = watch::channel(false);
        entry.reports = (0..partitions)
            .map(|partition| Arc::new(Mutex::new(TaskReport::new(partition))))
            .collect();
        let tasks = entry
            .reports
            .iter()
            .enumerate()
            .map(|(partition, report)| {
                let partition = PartitionIndex(partition as i32);
                tokio::spawn(supervise(
                    context.clone(),
                    partition,
                    Arc::clone(report),
                    stopped.clone(),
                ))
            })
            .collect();
        entry.running = Some(Running { stop, tasks });
        Ok(())
    }

    /// Starts one instance with an empty store, so a configuration the processor refuses
    /// fails the deployment instead of its tasks.
    async fn check_init(
        &self,
        factory: &Arc<dyn TransformFactory>,
        spec: &ProcessorSpec,
    ) -> Result<()> {
        let (factory, settings, limits) = (Arc::clone(factory), spec.settings.clone(), spec.limits);
        self.pool
            .run(move || {
                factory
                    .start(&settings, limits, StateStore::new(limits.state))
                    .map(drop)
            })
            .await?
            .map_err(|message| Error::Module { message })
    }
}

async fn stop(entry: &mut Deployed) {
    let Some(running) = entry.running.take() else {
        return;
    };
    let _ = running.stop.send(true);
    for task in running.tasks {
        match task.await {
            Ok(Ok(())) | Ok(Err(_)) => {}
            Err(error) => {
                tracing::error!(processor = %entry.stored.spec.name, %error, "a task panicked")
            }
        }
    }
}

fn describe(entry: &Deployed) -> Description {
    let tasks: Vec<TaskDescription> = entry
        .reports
        .iter()
        .filter_map(|report| report.lock().ok().map(|report| task_description(&report)))
        .collect();
    let state = if entry.stored.paused {
        "paused"
    } else if entry.running.is_none()
        || tasks
            .iter()
            .any(|task| task.state == TaskState::Failed.as_str())
    {
        // Not started (it could not), or a task stopped on an error.
        "failed"
    } else if tasks
        .iter()
        .all(|task| task.state == TaskState::Running.as_str())
    {
        "running"
    } else {
        "starting"
    };
    Description {
        spec: entry.stored.spec.clone(),
        state,
        module_bytes: entry.stored.module_bytes,
        module_crc32c: entry.stored.module_crc32c,
        deployed_at_ms: entry.stored.deployed_at_ms,
        records_in: tasks.iter().map(|task| task.records_in).sum(),
        records_out: tasks.iter().map(|task| task.records_out).sum(),
        errors: tasks.iter().map(|task| task.errors).sum(),
        lag: tasks.iter().map(|task| task.lag).sum(),
        tasks,
    }
}

fn task_description(report: &TaskReport) -> TaskDescription {
    TaskDescription {
        partition: report.partition,
        state: report.state.as_str(),
        committed_offset: report.committed_offset,
        lag: report.lag(),
        records_in: report.records_in,
        records_out: report.records_out,
        errors: report.errors,
        last_error: report.last_error.clone(),
    }
}

fn unknown(name: &str) -> Error {
    Error::UnknownProcessor {
        name: name.to_owned(),
    }
}

fn validate(spec: &ProcessorSpec) -> Result<()> {
    let invalid = |reason: String| Err(Error::InvalidSpec { reason });
    if spec.name.is_empty() || spec.name.len() > NAME_BYTES_MAX {
        return invalid(format!("a name must have 1 to {NAME_BYTES_MAX} characters"));
    }
    if validate_topic_name(&spec.changelog_topic()).is_err() {
        return invalid(format!(
            "name `{}`: only ASCII letters, digits, '.', '_' and '-' are allowed",
            spec.name
        ));
    }
    if spec.outputs.contains(&spec.input) {
        return invalid(format!(
            "output `{}` is the input: the processor would read its own outputs",
            spec.input
        ));
    }
    if let ErrorPolicy::DeadLetter { topic } = &spec.error_policy
        && *topic == spec.input
    {
        return invalid("the dead-letter topic is the input".to_owned());
    }
    spec.limits.validate().or_else(invalid)
}
