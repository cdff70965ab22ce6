//! The processor benchmark (not a test; `cargo bench -p fjord-wasm --bench processors`):
//! the JSON field filter on 200-byte JSON records, printed beside the same logic compiled
//! natively and run over the same records in this process.
//!
//! 1. native: `JsonFilter::keep` over every record (the baseline);
//! 2. the guest call alone, per batch size (1, 100, 10,000 records);
//! 3. the whole path inside the broker's engine: input topic to output topic, committed
//!    (read_committed input, the call, outputs, changelog and input position in one
//!    transaction), one call thread;
//! 4. the added end-to-end latency at 5,000 records/s: a read_committed reader of the output
//!    against one of the input itself, p50/p99.
//!
//! `FJORD_BENCH_RECORDS` (default 1,000,000) sets the records of 1-3.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fjord_engine::{Engine, EngineConfig, Offset, Origin, PartitionIndex, SystemClock};
use fjord_processor::{
    CallContext, CallPool, ErrorPolicy, InputRecord, ProcessorLimits, ProcessorSpec, StartFrom,
    StateStore, TaskContext, TaskReport, Transform, TransformFactory, supervise,
};
use fjord_record::{BatchBuilder, Compression, NewRecord};
use fjord_sdk::shapes::FilterFn;
use fjord_wasm::{Runtime, RuntimeConfig};
use json_filter::JsonFilter;

const RECORD_BYTES: usize = 200;
const SETTINGS: [(&str, &str); 2] = [("field", "region"), ("value", "eu")];

fn main() -> anyhow::Result<()> {
    let count: usize = std::env::var("FJORD_BENCH_RECORDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(1_000_000);
    let values = json_values(count);
    println!(
        "processor benchmark: JSON field filter, {count} records of {RECORD_BYTES} bytes, half kept"
    );

    let native = native_rate(&values)?;
    println!(
        "native filter                     {:>12.0} records/s   (baseline)",
        native
    );

    let runtime = Runtime::new(RuntimeConfig::default())?;
    let module = runtime.compile(&guest_harness::component("json-filter"))?;
    for batch in [1, 100, 10_000] {
        let rate = guest_call_rate(&module, &values, batch)?;
        println!(
            "guest call, batches of {batch:>6}     {rate:>12.0} records/s   {:.2} of native",
            rate / native
        );
    }

    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let whole = tokio.block_on(whole_path_rate(&module, &values))?;
    println!(
        "input to committed output (engine) {whole:>12.0} records/s   {:.2} of native",
        whole / native
    );

    let (baseline, processed) = tokio.block_on(latencies(&module))?;
    println!(
        "latency at 5,000 records/s, p50/p99: input {:.2}/{:.2} ms, through the processor {:.2}/{:.2} ms, added p99 {:.2} ms",
        baseline.0,
        baseline.1,
        processed.0,
        processed.1,
        processed.1 - baseline.1
    );
    Ok(())
}

/// 200-byte JSON objects; every other one has `"region":"eu"`.
fn json_values(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|index| {
            let region = if index % 2 == 0 { "eu" } else { "us" };
            let mut value = format!(
                r#"{{"id":{index},"region":"{region}","customer":"c-{}","amount":{},"pad":""#,
                index % 1000,
                index % 977
            );
            let padding = RECORD_BYTES.saturating_sub(value.len() + 2);
            value.push_str(&"x".repeat(padding));
            value.push_str("\"}");
            value.into_bytes()
        })
        .collect()
}

fn native_rate(values: &[Vec<u8>]) -> anyhow::Result<f64> {
    let config: fjord_sdk::Config = SETTINGS.iter().copied().collect();
    let mut filter = JsonFilter::init(&config).map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    let mut kept = 0;
    for (offset, value) in values.iter().enumerate() {
        let mut record = fjord_sdk::Record::new(None, Some(value));
        record.offset = offset as i64;
        kept += usize::from(
            filter
                .keep(&record)
                .map_err(|error| anyhow::anyhow!("{}", error.message()))?,
        );
    }
    anyhow::ensure!(kept == values.len().div_ceil(2), "kept {kept}");
    Ok(values.len() as f64 / started.elapsed().as_secs_f64())
}

fn input_record(offset: usize, value: &[u8]) -> InputRecord {
    InputRecord {
        partition: 0,
        offset: offset as i64,
        timestamp_ms: offset as i64,
        key: None,
        value: Some(value.to_vec()),
        headers: Vec::new(),
    }
}

fn guest_call_rate(
    module: &fjord_wasm::Module,
    values: &[Vec<u8>],
    batch: usize,
) -> anyhow::Result<f64> {
    let settings: Vec<(String, String)> = SETTINGS
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    let limits = ProcessorLimits {
        batch_records: batch,
        ..ProcessorLimits::default()
    };
    let mut instance = module.instantiate(&settings, limits, StateStore::new(limits.state))?;
    // Batches of one are slow: measure them over a tenth of the records.
    let records = if batch == 1 {
        &values[..values.len() / 10]
    } else {
        values
    };
    let batches: Vec<Vec<InputRecord>> = records
        .chunks(batch)
        .enumerate()
        .map(|(index, chunk)| {
            chunk
                .iter()
                .enumerate()
                .map(|(at, value)| input_record(index * batch + at, value))
                .collect()
        })
        .collect();
    let started = Instant::now();
    let mut kept = 0;
    for batch in batches {
        kept += instance
            .process(
                batch,
                CallContext {
                    time_ms: 0,
                    random_seed: 0,
                },
            )?
            .outputs
            .len();
    }
    let elapsed = started.elapsed();
    anyhow::ensure!(kept == records.len().div_ceil(2), "kept {kept}");
    Ok(records.len() as f64 / elapsed.as_secs_f64())
}

struct WasmFactory(fjord_wasm::Module);

impl TransformFactory for WasmFactory {
    fn start(
        &self,
        settings: &[(String, String)],
        limits: ProcessorLimits,
        state: StateStore,
    ) -> Result<Box<dyn Transform>, String> {
        self.0
            .instantiate(settings, limits, state)
            .map(|instance| Box::new(instance) as Box<dyn Transform>)
            .map_err(|error| error.to_string())
    }
}

async fn engine() -> anyhow::Result<(Arc<Engine>, tempfile::TempDir)> {
    let directory = tempfile::tempdir()?;
    let engine = Arc::new(
        Engine::open(
            EngineConfig::new(directory.path().to_path_buf()),
            Arc::new(SystemClock),
        )
        .await?,
    );
    for topic in ["input", "output"] {
        engine
            .create_topic(topic, 1, BTreeMap::new(), false)
            .await?;
    }
    Ok((engine, directory))
}

fn spec() -> ProcessorSpec {
    ProcessorSpec {
        name: "bench".to_owned(),
        input: "input".to_owned(),
        outputs: vec!["output".to_owned()],
        settings: SETTINGS
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect(),
        start_from: StartFrom::Earliest,
        error_policy: ErrorPolicy::Stop,
        commit_interval: fjord_processor::COMMIT_INTERVAL_DEFAULT,
        limits: ProcessorLimits::default(),
    }
}

async fn append(
    engine: &Engine,
    topic: &str,
    values: &[Vec<u8>],
    timestamp_ms: i64,
) -> anyhow::Result<()> {
    let mut builder = BatchBuilder::new(Compression::None);
    for value in values {
        builder.push(&NewRecord {
            timestamp_ms,
            key: None,
            value: Some(value),
            headers: &[],
        })?;
    }
    engine
        .append(
            topic,
            PartitionIndex(0),
            bytes::Bytes::from(builder.build()?),
            Origin::Client,
        )
        .await?;
    Ok(())
}

/// Starts the processor's task; returns its report and the stop switch.
async fn start_task(
    engine: &Arc<Engine>,
    module: &fjord_wasm::Module,
) -> anyhow::Result<(Arc<Mutex<TaskReport>>, tokio::sync::watch::Sender<bool>)> {
    let spec = spec();
    fjord_processor::topics::prepare(engine, &spec).await?;
    let context = TaskContext {
        engine: Arc::clone(engine),
        pool: CallPool::new(1)?,
        spec: Arc::new(spec),
        factory: Arc::new(WasmFactory(module.clone())),
        logs: Arc::default(),
    };
    let report = Arc::new(Mutex::new(TaskReport::new(0)));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(supervise(
        context,
        PartitionIndex(0),
        Arc::clone(&report),
        stopped,
    ));
    Ok((report, stop))
}

async fn whole_path_rate(module: &fjord_wasm::Module, values: &[Vec<u8>]) -> anyhow::Result<f64> {
    let (engine, _directory) = engine().await?;
    for chunk in values.chunks(1_000) {
        append(&engine, "input", chunk, 1).await?;
    }
    let started = Instant::now();
    let (report, stop) = start_task(&engine, module).await?;
    let target = values.len() as i64;
    while report.lock().map_or(0, |report| report.committed_offset) < target {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = started.elapsed();
    stop.send(true)?;
    let output = engine.offsets("output", PartitionIndex(0))?;
    anyhow::ensure!(
        output.last_stable_offset.0 >= target / 2,
        "output {output:?}"
    );
    Ok(values.len() as f64 / elapsed.as_secs_f64())
}

/// p50 and p99 (ms) of the time from append to a read_committed read, at 5,000 records/s
/// for 5 s: of the input itself, then of the output through the processor.
async fn latencies(module: &fjord_wasm::Module) -> anyhow::Result<((f64, f64), (f64, f64))> {
    let (engine, _directory) = engine().await?;
    let baseline = paced_latency(&engine, "input", 0).await?;
    let (_report, stop) = start_task(&engine, module).await?;
    let processed = paced_latency(&engine, "output", 1).await?;
    stop.send(true)?;
    Ok((baseline, processed))
}

async fn paced_latency(
    engine: &Arc<Engine>,
    read_topic: &'static str,
    round: usize,
) -> anyhow::Result<(f64, f64)> {
    const RATE: usize = 5_000;
    const SECONDS: usize = 5;
    let sent: Arc<Mutex<BTreeMap<u64, Instant>>> = Arc::default();
    let writer = {
        let (engine, sent) = (Arc::clone(engine), Arc::clone(&sent));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_millis(1));
            for tick in 0..(SECONDS * 1_000) as u64 {
                ticker.tick().await;
                // Five records a millisecond, all kept by the filter.
                let values: Vec<Vec<u8>> = (0..5)
                    .map(|at| {
                        format!(
                            r#"{{"region":"eu","round":{round},"seq":{}}}"#,
                            tick * 5 + at
                        )
                        .into_bytes()
                    })
                    .collect();
                let now = Instant::now();
                if let Ok(mut sent) = sent.lock() {
                    for at in 0..5 {
                        sent.insert(tick * 5 + at, now);
                    }
                }
                append(&engine, "input", &values, 1).await?;
            }
            anyhow::Ok(())
        })
    };
    let expected = (RATE * SECONDS) as u64;
    let mut latencies = Vec::with_capacity(expected as usize);
    let mut offset = engine
        .offsets(read_topic, PartitionIndex(0))?
        .last_stable_offset;
    let deadline = Instant::now() + Duration::from_secs(60);
    while (latencies.len() as u64) < expected && Instant::now() < deadline {
        let mut waiter = engine.waiter([(read_topic.to_owned(), PartitionIndex(0))]);
        let read = engine
            .read_committed(read_topic, PartitionIndex(0), offset, 1 << 20)
            .await?;
        let now = Instant::now();
        for record in &read.records {
            let value =
                String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()).into_owned();
            if !value.contains(&format!(r#""round":{round},"#)) {
                continue;
            }
            let seq: u64 = value
                .rsplit(':')
                .next()
                .and_then(|tail| tail.trim_end_matches('}').parse().ok())
                .unwrap_or(u64::MAX);
            if let Some(at) = sent.lock().ok().and_then(|sent| sent.get(&seq).copied()) {
                latencies.push(now.duration_since(at).as_secs_f64() * 1_000.0);
            }
        }
        if read.next_offset == offset {
            waiter
                .changed(tokio::time::Instant::now() + Duration::from_millis(100))
                .await;
        }
        offset = Offset(read.next_offset.0.max(offset.0));
    }
    writer.await??;
    latencies.sort_by(f64::total_cmp);
    let at = |quantile: f64| {
        latencies
            .get(
                ((latencies.len() as f64 * quantile) as usize)
                    .min(latencies.len().saturating_sub(1)),
            )
            .copied()
            .unwrap_or(f64::NAN)
    };
    Ok((at(0.50), at(0.99)))
}
