//! Transactions in the log: an open transaction holds the last stable offset back to its
//! first offset until its marker, a `read_committed` read stops there, and the state comes
//! back after a clean restart and after a crash.

use fjord_log::{AbortedTransaction, Log, Recovery};
use fjord_partition::{Offset, ProducerId};
use fjord_record::{BatchBuilder, Compression, ControlType, NewRecord};
use proptest::prelude::*;

use crate::support::{pool, restart, small_config};

/// A transactional batch of `count` records.
fn transactional(producer_id: i64, sequence: i32, count: usize) -> Vec<u8> {
    let mut builder = BatchBuilder::new(Compression::None);
    builder.producer_id = producer_id;
    builder.producer_epoch = 0;
    builder.base_sequence = sequence;
    builder.transactional = true;
    for _ in 0..count {
        builder
            .push(&NewRecord {
                timestamp_ms: 1,
                value: Some(b"in a transaction"),
                ..NewRecord::default()
            })
            .expect("small batch");
    }
    builder.build().expect("small batch")
}

/// The marker a coordinator writes to end `producer_id`'s transaction.
fn marker(producer_id: i64, kind: ControlType) -> Vec<u8> {
    kind.marker_batch(producer_id, 0, 0, 1).expect("one record")
}

#[test]
fn an_open_transaction_holds_the_last_stable_offset_until_its_marker() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = small_config();
    let mut log = Log::create(dir.path(), config.clone(), pool(), 0)?;
    let high_watermark = |log: &mut Log| {
        let end = log.log_end_offset();
        log.set_high_watermark(end);
    };
    log.append(&transactional(5, 0, 3), 0, 0)?; // offsets 0-2, producer 5 opens
    log.append(&transactional(6, 0, 2), 0, 0)?; // offsets 3-4, producer 6 opens
    high_watermark(&mut log);
    assert_eq!((log.high_watermark(), log.last_stable_offset()), (5, 0));
    assert!(log.read(0, 1 << 20, log.last_stable_offset())?.is_empty());

    log.append(&marker(5, ControlType::Commit), 0, 0)?; // offset 5
    high_watermark(&mut log);
    assert_eq!(log.last_stable_offset(), 3, "held by producer 6 now");
    log.close()?;
    let (mut log, _) = Log::open(dir.path(), config.clone(), pool(), Recovery::Trusted, 0)?;
    high_watermark(&mut log);
    assert_eq!(log.last_stable_offset(), 3, "from the snapshot");

    log.append(&transactional(6, 2, 1), 0, 0)?; // offset 6, same transaction
    log.append(&marker(6, ControlType::Abort), 0, 0)?; // offset 7
    high_watermark(&mut log);
    assert_eq!(log.last_stable_offset(), 8);
    log.append(&transactional(5, 3, 1), 0, 0)?; // offset 8: producer 5's next transaction
    high_watermark(&mut log);
    assert_eq!(log.last_stable_offset(), 8);
    drop(log); // a crash: the snapshot is older than the data
    let (mut log, _) = Log::open(dir.path(), config, pool(), Recovery::Full, 0)?;
    high_watermark(&mut log);
    assert_eq!(
        log.last_stable_offset(),
        8,
        "rebuilt from the batches after the snapshot"
    );
    let stable = log.read(0, 1 << 20, 8)?;
    let records: i32 = fjord_record::batches(&stable)
        .map(|batch| batch.map(|b| b.header.records_count))
        .sum::<Result<_, _>>()?;
    assert_eq!(records, 8, "the records and markers below it");
    Ok(())
}

/// One step of the model test.
#[derive(Debug, Clone)]
enum Step {
    /// A transactional batch of `count` records from producer `producer`.
    Produce { producer: usize, count: usize },
    /// The marker ending producer `producer`'s transaction.
    End { producer: usize, commit: bool },
    /// A restart: clean (snapshot written) or a crash (replayed from the snapshot on).
    Restart { clean: bool },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (0usize..3, 1usize..4).prop_map(|(producer, count)| Step::Produce { producer, count }),
        3 => (0usize..3, any::<bool>()).prop_map(|(producer, commit)| Step::End { producer, commit }),
        1 => any::<bool>().prop_map(|clean| Step::Restart { clean }),
    ]
}

/// `Log::aborted_transactions` gives, for every range, exactly the model's aborted
/// transactions with records in it, in marker order.
fn check_aborted(log: &Log, aborted: &[(i64, i64, i64)]) -> Result<(), TestCaseError> {
    let end = log.log_end_offset();
    for from in 0..=end {
        for to in [from + 1, from + 5, end] {
            let expected: Vec<AbortedTransaction> = aborted
                .iter()
                .filter(|(_, first, last)| *last >= from && *first < to)
                .map(|(id, first, _)| AbortedTransaction {
                    producer_id: ProducerId(*id),
                    first_offset: Offset(*first),
                })
                .collect();
            prop_assert_eq!(
                log.aborted_transactions(from, to),
                expected,
                "range {}..{}",
                from,
                to
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The last stable offset is always the first offset of the oldest open transaction, or
    /// the high watermark when none is open, and the aborted transactions of any range are
    /// the model's, through segment rolls and restarts of both kinds.
    #[test]
    fn the_last_stable_offset_follows_a_model(steps in proptest::collection::vec(step(), 1..40)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = small_config(); // 1 KiB segments: rolls, each writing a snapshot
        let mut log = Log::create(dir.path(), config.clone(), pool(), 0).expect("create");
        // Model: each producer's next sequence and open transaction's first offset.
        let mut sequences = [0i32; 3];
        let mut open: [Option<i64>; 3] = [None; 3];
        // And every aborted transaction: (producer id, first offset, marker offset).
        let mut aborted: Vec<(i64, i64, i64)> = Vec::new();
        for step in steps {
            match step {
                Step::Produce { producer, count } => {
                    let id = producer as i64 + 1;
                    let base = log.log_end_offset();
                    log.append(&transactional(id, sequences[producer], count), 0, 0)
                        .expect("append");
                    sequences[producer] += count as i32;
                    open[producer].get_or_insert(base);
                }
                Step::End { producer, commit } => {
                    let kind = if commit { ControlType::Commit } else { ControlType::Abort };
                    let id = producer as i64 + 1;
                    let at = log.append(&marker(id, kind), 0, 0).expect("marker").base_offset;
                    if let Some(first) = open[producer].take().filter(|_| !commit) {
                        aborted.push((id, first, at));
                    }
                }
                Step::Restart { clean } => {
                    log = restart(log, dir.path(), config.clone(), clean, 0)
                        .expect("reopen")
                        .0;
                }
            }
            let end = log.log_end_offset();
            log.set_high_watermark(end);
            let expected = open.iter().flatten().min().copied().unwrap_or(end);
            prop_assert_eq!(log.last_stable_offset(), expected);
            check_aborted(&log, &aborted)?;
        }
    }
}
