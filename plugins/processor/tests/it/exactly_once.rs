//! Crashes at random points (a task's future dropped mid-flight, its transaction left open)
//! lose nothing and duplicate nothing: every count is emitted exactly once, in order.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fjord_engine::PartitionIndex;
use fjord_processor::{ErrorPolicy, TaskReport, supervise, topics};

use crate::{committed, context, create_topics, open_engine, produce, run_until, spec};

const PARTITIONS: i32 = 2;
const ROUNDS: usize = 20;
const RECORDS_PER_ROUND: usize = 40;
const KEYS: usize = 5;

/// A small deterministic generator, seeded from the clock and printed for replays.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_commit_exactly_once_across_random_crashes() -> anyhow::Result<()> {
    let seed = std::env::var("FJORD_TEST_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |elapsed| elapsed.as_nanos() as u64)
        });
    println!("FJORD_TEST_SEED={seed}");
    let mut random = Random(seed);
    let test = open_engine(None).await?;
    let engine = &test.engine;
    create_topics(engine, PARTITIONS).await?;
    let spec = spec(ErrorPolicy::Stop);
    topics::prepare(engine, &spec).await?;
    let context = context(engine, spec)?;

    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for round in 0..ROUNDS {
        for partition in 0..PARTITIONS {
            let records: Vec<(String, String)> = (0..RECORDS_PER_ROUND)
                .map(|index| {
                    (
                        format!("p{partition}-k{}", (index + round) % KEYS),
                        format!("r{round}-{index}"),
                    )
                })
                .collect();
            for (key, _) in &records {
                *expected.entry(key.clone()).or_default() += 1;
            }
            produce(engine, partition, &records, 1_000 * round as i64).await?;
        }
        // Start both tasks and crash them after a random while.
        let mut running = Vec::new();
        for partition in 0..PARTITIONS {
            let context = context.clone();
            running.push(tokio::spawn(async move {
                let report = Arc::new(Mutex::new(TaskReport::new(partition)));
                let (_stop, stopped) = tokio::sync::watch::channel(false);
                supervise(context, PartitionIndex(partition), report, stopped).await
            }));
        }
        tokio::time::sleep(Duration::from_micros(random.below(20_000))).await;
        for handle in running {
            handle.abort();
            let _ = handle.await;
        }
    }
    let total = (ROUNDS * RECORDS_PER_ROUND) as i64;
    for partition in 0..PARTITIONS {
        run_until(&context, partition, total).await?;
    }

    let mut emitted: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for partition in 0..PARTITIONS {
        for (key, value, _) in committed(engine, "counts", partition).await? {
            let (_, count) = value
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("odd output {value}"))?;
            emitted.entry(key).or_default().push(count.parse()?);
        }
    }
    for (key, count) in &expected {
        let counts = emitted.get(key).cloned().unwrap_or_default();
        let wanted: Vec<u64> = (1..=*count).collect();
        assert_eq!(
            counts, wanted,
            "key {key}: each count once, in order (seed {seed})"
        );
    }
    assert_eq!(emitted.len(), expected.len());
    let group = engine
        .groups()
        .fetch_offsets("fjord-processor-counter", None);
    for (_, partition, found) in group {
        assert_eq!(
            found.map(|committed| committed.offset.0),
            Some(total),
            "partition {partition:?}"
        );
    }
    Ok(())
}
