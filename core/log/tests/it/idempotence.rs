//! Idempotent producers: retries answered with the original offsets, gaps and fenced epochs
//! refused, and the state surviving a clean restart, a crash and a roll.

use fjord_log::{Error, Log, Recovery};
use fjord_record::{BatchBuilder, Compression, NewRecord};

use crate::support::{pool, small_config};

/// A batch of `count` records from producer `producer_id` at `epoch`, first sequence `sequence`.
fn produced(producer_id: i64, epoch: i16, sequence: i32, count: usize) -> Vec<u8> {
    let mut builder = BatchBuilder::new(Compression::None);
    builder.producer_id = producer_id;
    builder.producer_epoch = epoch;
    builder.base_sequence = sequence;
    for _ in 0..count {
        builder
            .push(&NewRecord {
                timestamp_ms: 1,
                value: Some(b"value of some length"),
                ..NewRecord::default()
            })
            .expect("small batch");
    }
    builder.build().expect("small batch")
}

#[test]
fn retries_are_answered_with_the_original_offsets() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut log = Log::create(dir.path(), small_config(), pool(), 0)?;
    let first = log.append(&produced(5, 0, 0, 3), 0, 0)?;
    let second = log.append(&produced(5, 0, 3, 2), 0, 0)?;
    assert_eq!((second.base_offset, second.last_offset), (3, 4));
    let retry = log.append(&produced(5, 0, 0, 3), 0, 0)?;
    assert!(retry.duplicate);
    assert_eq!(
        (retry.base_offset, retry.last_offset),
        (first.base_offset, 2)
    );
    assert_eq!(log.log_end_offset(), 5, "a retry writes nothing");
    let gap = log.append(&produced(5, 0, 9, 1), 0, 0);
    assert!(matches!(
        gap,
        Err(Error::Partition(
            fjord_partition::Error::OutOfOrderSequence {
                expected_sequence: 5,
                ..
            }
        ))
    ));
    let fenced = log.append(&produced(5, 0, 5, 1), 0, 0);
    assert!(fenced.is_ok());
    log.append(&produced(5, 1, 0, 1), 0, 0)?;
    let old_epoch = log.append(&produced(5, 0, 6, 1), 0, 0);
    assert!(matches!(
        old_epoch,
        Err(Error::Partition(
            fjord_partition::Error::InvalidProducerEpoch { .. }
        ))
    ));
    // Two batches of one producer in one append: the second continues the first.
    let mut both = produced(6, 0, 0, 2);
    both.extend(produced(6, 0, 2, 2));
    assert_eq!(log.append(&both, 0, 0)?.records_count, 4);
    Ok(())
}

#[test]
fn producer_state_survives_close_crash_and_roll() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = small_config(); // 1 KiB segments: these appends roll often
    let mut log = Log::create(dir.path(), config.clone(), pool(), 0)?;
    for i in 0..20 {
        log.append(&produced(1, 0, i * 2, 2), 0, 0)?;
    }
    assert!(log.segment_count() > 2);
    log.close()?;
    let (mut log, _) = Log::open(dir.path(), config.clone(), pool(), Recovery::Trusted, 0)?;
    assert!(log.append(&produced(1, 0, 38, 2), 0, 0)?.duplicate);
    log.append(&produced(1, 0, 40, 2), 0, 0)?;
    log.append(&produced(2, 3, 0, 1), 0, 0)?;
    drop(log); // a crash: the snapshot is older than the data
    let (mut log, _) = Log::open(dir.path(), config.clone(), pool(), Recovery::Full, 0)?;
    let retry = log.append(&produced(1, 0, 40, 2), 0, 0)?;
    assert!(retry.duplicate);
    assert_eq!(retry.base_offset, 40);
    assert!(log.append(&produced(2, 3, 0, 1), 0, 0)?.duplicate);
    assert!(matches!(
        log.append(&produced(1, 0, 50, 1), 0, 0),
        Err(Error::Partition(
            fjord_partition::Error::OutOfOrderSequence { .. }
        ))
    ));
    // Truncation forgets the batches it removes: the producer may write them again.
    log.truncate_to(40)?;
    assert!(!log.append(&produced(1, 0, 40, 2), 0, 0)?.duplicate);
    Ok(())
}
