//! The error policies: stop, skip, dead-letter; and timers.

use fjord_processor::{ErrorPolicy, TaskState, topics};

use fjord_processor::TaskContext;

use crate::{TestEngine, committed, context, create_topics, open_engine, produce, run_until, spec};

/// The values of partition 0 of `topic`, committed, in order.
async fn values(engine: &fjord_engine::Engine, topic: &str) -> anyhow::Result<Vec<String>> {
    let records = committed(engine, topic, 0).await?;
    Ok(records.into_iter().map(|(_, value, _)| value).collect())
}

/// An engine with the test topics and a one-partition processor under `policy`.
async fn setup(policy: ErrorPolicy) -> anyhow::Result<(TestEngine, TaskContext)> {
    let test = open_engine(None).await?;
    create_topics(&test.engine, 1).await?;
    let spec = spec(policy);
    topics::prepare(&test.engine, &spec).await?;
    let context = context(&test.engine, spec)?;
    Ok((test, context))
}

fn records(values: &[&str]) -> Vec<(String, String)> {
    values
        .iter()
        .map(|value| ("k".to_owned(), (*value).to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_take_failed_and_trapping_records_and_the_rest_goes_on() -> anyhow::Result<()>
{
    let (test, context) = setup(ErrorPolicy::DeadLetter {
        topic: "dead-letters".to_owned(),
    })
    .await?;
    let engine = &test.engine;
    produce(
        engine,
        0,
        &records(&["a", "fail", "b", "trap", "c", "d", "e", "f", "g", "h"]),
        1_000,
    )
    .await?;
    run_until(&context, 0, 10).await?;

    let counts = values(engine, "counts").await?;
    assert_eq!(
        counts,
        ["k=1", "k=2", "k=3", "k=4", "k=5", "k=6", "k=7", "k=8"],
        "the trap's batch was redone"
    );
    let dead = committed(engine, "dead-letters", 0).await?;
    let values: Vec<&str> = dead.iter().map(|(_, value, _)| value.as_str()).collect();
    assert_eq!(values, ["fail", "trap"]);
    let headers: std::collections::BTreeMap<&str, &str> = dead[1]
        .2
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    assert_eq!(
        headers.get("fjord.error.message"),
        Some(&"the processor trapped: trap on purpose")
    );
    assert_eq!(headers.get("fjord.error.offset"), Some(&"3"));
    assert_eq!(headers.get("fjord.error.processor"), Some(&"counter"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_drops_failed_records() -> anyhow::Result<()> {
    let (test, context) = setup(ErrorPolicy::Skip).await?;
    let engine = &test.engine;
    produce(engine, 0, &records(&["a", "trap", "fail", "b"]), 1_000).await?;
    let report = run_until(&context, 0, 4).await?;
    let counts = values(engine, "counts").await?;
    assert_eq!(counts, ["k=1", "k=2"]);
    assert_eq!(report.lock().expect("report").errors, 2);
    assert!(committed(engine, "dead-letters", 0).await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_halts_at_the_failed_record_with_nothing_of_its_batch_committed() -> anyhow::Result<()>
{
    let (test, context) = setup(ErrorPolicy::Stop).await?;
    let engine = &test.engine;
    produce(
        engine,
        0,
        &records(&["a", "b", "c", "d", "e", "f", "g"]),
        1_000,
    )
    .await?; // one batch of 7
    produce(engine, 0, &records(&["h", "fail", "i"]), 2_000).await?;
    let report = run_until(&context, 0, 10).await;
    assert!(report.is_err(), "the task fails");
    let counts = committed(engine, "counts", 0).await?;
    assert_eq!(
        counts.len(),
        7,
        "only the first batch committed: {counts:?}"
    );
    let group = engine
        .groups()
        .fetch_offsets("fjord-processor-counter", None);
    assert_eq!(
        group[0].2.as_ref().map(|committed| committed.offset.0),
        Some(7)
    );
    let _ = TaskState::Failed;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_fire_once_the_watermark_passes_them() -> anyhow::Result<()> {
    let (test, context) = setup(ErrorPolicy::Stop).await?;
    let engine = &test.engine;
    produce(engine, 0, &records(&["a"]), 1_000).await?;
    produce(engine, 0, &[("other".to_owned(), "b".to_owned())], 1_050).await?;
    produce(engine, 0, &[("other".to_owned(), "c".to_owned())], 1_200).await?; // moves other's to 1300
    produce(engine, 0, &[("last".to_owned(), "d".to_owned())], 1_400).await?;
    run_until(&context, 0, 4).await?;
    let timers = values(engine, "timers").await?;
    assert_eq!(
        timers,
        ["timer:k", "timer:other"],
        "k's (1100) and other's (1300) passed by 1400, last's (1500) not"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_removed_by_retention_goes_on_from_the_log_start() -> anyhow::Result<()> {
    let (test, context) = setup(ErrorPolicy::Stop).await?;
    let engine = &test.engine;
    produce(engine, 0, &records(&["a", "b"]), 1_000).await?;
    run_until(&context, 0, 2).await?;
    produce(
        engine,
        0,
        &records(&["c", "d", "e", "f", "g", "h", "i", "j"]),
        2_000,
    )
    .await?;
    // Offsets 2 to 5 go before the processor reads them (the committed position is 2).
    engine
        .delete_records(
            "input",
            fjord_engine::PartitionIndex(0),
            fjord_engine::Offset(6),
        )
        .await?;
    run_until(&context, 0, 10).await?;
    let counts = values(engine, "counts").await?;
    assert_eq!(
        counts,
        ["k=1", "k=2", "k=3", "k=4", "k=5", "k=6"],
        "a, b, then g to j"
    );
    Ok(())
}
