//! The processor runtime against a real engine, with a native transform: exactly-once across
//! crashes, error policies, state and timers.

mod exactly_once;
mod policies;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fjord_engine::{Engine, EngineConfig, Offset, Origin, PartitionIndex, SystemClock};
use fjord_processor::transform::{
    BatchOutput, CallContext, CallError, DueTimer, InputRecord, OutputRecord, RecordFailure,
};
use fjord_processor::{
    CallPool, ErrorPolicy, ProcessorLimits, ProcessorSpec, StartFrom, StateStore, TaskContext,
    TaskReport, Transform, TransformFactory, supervise,
};
use fjord_record::{BatchBuilder, Compression, NewRecord};

/// Counts records per key in the state store and emits `key=count`; a value `fail` fails
/// its record, a value `trap` fails the whole call. Each record sets a timer 100 ms of event
/// time later, whose firing emits `timer:key`.
struct Counter {
    state: StateStore,
}

impl Transform for Counter {
    fn process(
        &mut self,
        records: Vec<InputRecord>,
        _call: CallContext,
    ) -> Result<BatchOutput, CallError> {
        let mut output = BatchOutput::default();
        for (index, record) in records.iter().enumerate() {
            let key = record.key.clone().unwrap_or_default();
            match record.value.as_deref() {
                Some(b"trap") => {
                    return Err(CallError::Trap {
                        message: "trap on purpose".to_owned(),
                    });
                }
                Some(b"fail") => {
                    output.failures.push(RecordFailure {
                        index: index as u32,
                        message: "fail on purpose".to_owned(),
                    });
                    continue;
                }
                _ => {}
            }
            let count = self.state.get(&key).map_or(0, |bytes| {
                u64::from_be_bytes(bytes.try_into().unwrap_or_default())
            }) + 1;
            self.state
                .put(&key, &count.to_be_bytes(), None)
                .map_err(|error| CallError::Trap {
                    message: error.to_string(),
                })?;
            self.state
                .set_timer(&key, record.timestamp_ms + 100)
                .map_err(|error| CallError::Trap {
                    message: error.to_string(),
                })?;
            output.outputs.push(text_output(
                &key,
                format!("{}={count}", String::from_utf8_lossy(&key)),
            ));
        }
        Ok(output)
    }

    fn on_timer(
        &mut self,
        timers: Vec<DueTimer>,
        _call: CallContext,
    ) -> Result<BatchOutput, CallError> {
        let outputs = timers
            .iter()
            .map(|timer| {
                text_output(
                    &timer.key,
                    format!("timer:{}", String::from_utf8_lossy(&timer.key)),
                )
                .with_topic("timers")
            })
            .collect();
        Ok(BatchOutput {
            outputs,
            failures: Vec::new(),
        })
    }

    fn state(&mut self) -> &mut StateStore {
        &mut self.state
    }

    fn into_state(self: Box<Self>) -> StateStore {
        self.state
    }
}

trait WithTopic {
    fn with_topic(self, topic: &str) -> Self;
}

impl WithTopic for OutputRecord {
    fn with_topic(mut self, topic: &str) -> Self {
        self.topic = Some(topic.to_owned());
        self
    }
}

fn text_output(key: &[u8], value: String) -> OutputRecord {
    OutputRecord {
        topic: None,
        partition: None,
        key: Some(key.to_vec()),
        value: Some(value.into_bytes()),
        headers: Vec::new(),
        timestamp_ms: None,
    }
}

struct CounterFactory;

impl TransformFactory for CounterFactory {
    fn start(
        &self,
        _settings: &[(String, String)],
        _limits: ProcessorLimits,
        state: StateStore,
    ) -> Result<Box<dyn Transform>, String> {
        Ok(Box::new(Counter { state }))
    }
}

struct TestEngine {
    engine: Arc<Engine>,
    _directory: tempfile::TempDir,
}

async fn open_engine(directory: Option<tempfile::TempDir>) -> anyhow::Result<TestEngine> {
    let directory = match directory {
        Some(directory) => directory,
        None => tempfile::tempdir()?,
    };
    let mut config = EngineConfig::new(directory.path().to_path_buf());
    config.groups.initial_rebalance_delay = Duration::ZERO;
    let engine = Arc::new(Engine::open(config, Arc::new(SystemClock)).await?);
    Ok(TestEngine {
        engine,
        _directory: directory,
    })
}

fn spec(policy: ErrorPolicy) -> ProcessorSpec {
    ProcessorSpec {
        name: "counter".to_owned(),
        input: "input".to_owned(),
        outputs: vec!["counts".to_owned(), "timers".to_owned()],
        settings: Vec::new(),
        start_from: StartFrom::Earliest,
        error_policy: policy,
        commit_interval: Duration::ZERO,
        limits: ProcessorLimits {
            batch_records: 7,
            ..ProcessorLimits::default()
        },
    }
}

async fn create_topics(engine: &Engine, partitions: i32) -> anyhow::Result<()> {
    for topic in ["input", "counts", "timers", "dead-letters"] {
        engine
            .create_topic(topic, partitions, BTreeMap::new(), false)
            .await?;
    }
    Ok(())
}

fn context(engine: &Arc<Engine>, spec: ProcessorSpec) -> anyhow::Result<TaskContext> {
    Ok(TaskContext {
        engine: Arc::clone(engine),
        pool: CallPool::new(2)?,
        spec: Arc::new(spec),
        factory: Arc::new(CounterFactory),
        logs: Arc::default(),
    })
}

/// Appends `(key, value)` records to an input partition, one batch.
async fn produce(
    engine: &Engine,
    partition: i32,
    records: &[(String, String)],
    timestamp_ms: i64,
) -> anyhow::Result<()> {
    let mut builder = BatchBuilder::new(Compression::None);
    for (key, value) in records {
        builder.push(&NewRecord {
            timestamp_ms,
            key: Some(key.as_bytes()),
            value: Some(value.as_bytes()),
            headers: &[],
        })?;
    }
    engine
        .append(
            "input",
            PartitionIndex(partition),
            bytes::Bytes::from(builder.build()?),
            Origin::Client,
        )
        .await?;
    Ok(())
}

/// Every committed record of a topic's partition: (key, value, headers).
async fn committed(
    engine: &Engine,
    topic: &str,
    partition: i32,
) -> anyhow::Result<Vec<(String, String, Vec<(String, String)>)>> {
    let mut offset = Offset(0);
    let mut found = Vec::new();
    loop {
        let read = engine
            .read_committed(topic, PartitionIndex(partition), offset, 1 << 20)
            .await?;
        for record in &read.records {
            let text = |bytes: Option<&bytes::Bytes>| {
                String::from_utf8_lossy(bytes.map_or(&[][..], |bytes| bytes)).into_owned()
            };
            let headers = record
                .headers
                .iter()
                .map(|(key, value)| (text(Some(key)), text(value.as_ref())))
                .collect();
            found.push((
                text(record.key.as_ref()),
                text(record.value.as_ref()),
                headers,
            ));
        }
        if read.next_offset <= offset {
            return Ok(found);
        }
        offset = read.next_offset;
    }
}

/// Runs a task on `partition` until its committed position reaches `until`, then stops it.
async fn run_until(
    context: &TaskContext,
    partition: i32,
    until: i64,
) -> anyhow::Result<Arc<Mutex<TaskReport>>> {
    let report = Arc::new(Mutex::new(TaskReport::new(partition)));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(supervise(
        context.clone(),
        PartitionIndex(partition),
        Arc::clone(&report),
        stopped,
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (position, state) = {
            let report = report.lock().expect("report");
            (report.committed_offset, report.state)
        };
        if position >= until || state == fjord_processor::TaskState::Failed {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the task did not reach offset {until}: {:?}",
            report.lock().expect("report")
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.send(true)?;
    running.await??;
    Ok(report)
}
