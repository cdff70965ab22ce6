use fjord_log::{Error, FlushPolicy, Log, Recovery, Store, TopicConfig, TopicPartition};
use fjord_partition::Error as Refused;
use fjord_record::{Compression, TimestampType};

use crate::support::{batch, decode, filler, new_log, pool, read_all, small_config};

#[test]
fn append_assigns_offsets_and_reads_return_stored_bytes() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut log = new_log(dir.path(), small_config())?;
    let first = filler(3, 10, 1_000);
    let info = log.append(&first, 0, 5)?;
    assert_eq!(
        (info.base_offset, info.last_offset, info.records_count),
        (0, 2, 3)
    );
    let second = filler(2, 10, 2_000);
    let sent = second.clone();
    let info = log.append(&second, 0, 6)?;
    assert_eq!((info.base_offset, info.last_offset), (3, 4));
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(second, sent, "the producer's buffer is not changed");
    // The read hands back exactly the bytes appended, offsets assigned, nothing re-encoded.
    let bytes = log.read(3, 1 << 20, i64::MAX)?;
    assert_eq!(&bytes[..], &assigned(&second, 3)[..]);
    // A read mid-batch starts at the batch holding the offset.
    let records = decode(&log.read(1, 1 << 20, i64::MAX)?)?;
    assert_eq!(records.first().map(|r| r.offset), Some(0));
    assert_eq!(records.len(), 5);
    // max_offset (the high watermark) hides batches not wholly below it.
    assert!(
        decode(&log.read(0, 1 << 20, 3)?)?
            .iter()
            .all(|r| r.offset < 3)
    );
    assert!(log.read(5, 100, i64::MAX)?.is_empty());
    assert!(matches!(
        log.read(6, 100, i64::MAX),
        Err(Error::Partition(Refused::OffsetOutOfRange {
            offset: 6,
            ..
        }))
    ));
    Ok(())
}

#[test]
fn a_first_batch_larger_than_max_bytes_is_returned_whole() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut log = new_log(
        dir.path(),
        TopicConfig {
            segment_bytes: 1 << 20,
            ..small_config()
        },
    )?;
    let big = filler(10, 200, 0);
    log.append(&big, 0, 0)?;
    log.append(&filler(1, 10, 0), 0, 0)?;
    assert_eq!(log.read(0, 10, i64::MAX)?.len(), big.len());
    Ok(())
}

#[test]
fn bad_batches_are_rejected_before_touching_the_file() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut log = new_log(dir.path(), small_config())?;
    let good = filler(2, 10, 0);
    let mut corrupt = good.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let mut both = good.clone();
    both.extend_from_slice(&corrupt);
    assert!(matches!(
        log.append(&both, 0, 0),
        Err(Error::Partition(Refused::InvalidBatch(
            fjord_record::Error::CrcMismatch { .. }
        )))
    ));
    let torn = good[..good.len() - 3].to_vec();
    assert!(matches!(
        log.append(&torn, 0, 0),
        Err(Error::Partition(Refused::InvalidBatch(
            fjord_record::Error::Truncated { .. }
        )))
    ));
    let huge = filler(1, 2_000_000, 0);
    assert!(matches!(
        log.append(&huge, 0, 0),
        Err(Error::Partition(Refused::BatchTooLarge { .. }))
    ));
    assert!(matches!(
        log.append(&[], 0, 0),
        Err(Error::Partition(Refused::EmptyAppend))
    ));
    assert_eq!((log.log_end_offset(), log.size_bytes()), (0, 0));
    log.append(&good, 0, 0)?;
    assert_eq!(log.log_end_offset(), 2);
    Ok(())
}

#[test]
fn segments_roll_by_size_and_age() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut log = new_log(
        dir.path(),
        TopicConfig {
            segment_ms: 1_000,
            ..small_config()
        },
    )?;
    for _ in 0..10 {
        log.append(&filler(2, 200, 0), 0, 0)?;
    }
    let by_size = log.segment_count();
    assert!(by_size >= 4, "{by_size} segments");
    // Age: a segment is rolled once `segment.ms` passed since it started.
    log.roll(0)?;
    let rolled = log.segment_count();
    log.append(&filler(1, 1, 0), 0, 500)?;
    assert_eq!(log.segment_count(), rolled, "not old enough yet");
    log.append(&filler(1, 1, 0), 0, 10_000)?;
    assert_eq!(log.segment_count(), rolled + 1, "rolled by age");
    assert_eq!(read_all(&log)?.len(), 22);
    Ok(())
}

#[test]
fn offsets_for_timestamps_find_the_first_record_at_or_after() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut log = new_log(dir.path(), small_config())?;
    for i in 0..50i64 {
        let ts = [1_000 + i * 10, 1_000 + i * 10 + 5];
        let records: Vec<_> = ts.iter().map(|t| (None, Some(&b"v"[..]), *t)).collect();
        log.append(&batch(&records, Compression::Gzip), 0, 0)?;
    }
    for (target, offset) in [
        (0, 0),
        (1_000, 0),
        (1_003, 1),
        (1_005, 1),
        (1_006, 2),
        (1_255, 51),
        (1_495, 99),
    ] {
        let found = log.offset_for_timestamp(target)?.map(|f| f.offset);
        assert_eq!(found, Some(offset), "timestamp {target}");
    }
    assert_eq!(log.offset_for_timestamp(1_496)?, None);
    Ok(())
}

#[test]
fn log_append_time_is_stamped_and_checksummed() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = TopicConfig {
        message_timestamp_type: TimestampType::LogAppendTime,
        ..small_config()
    };
    let mut log = new_log(dir.path(), config)?;
    let info = log.append(&filler(2, 5, 1), 0, 777)?;
    assert_eq!(info.log_append_time_ms, 777);
    let bytes = log.read(0, 1 << 20, i64::MAX)?;
    let batch = fjord_record::batches(&bytes).next().expect("a batch")?;
    batch.verify_crc()?;
    assert_eq!(batch.header.max_timestamp, 777);
    assert_eq!(
        batch.header.attributes.timestamp_type(),
        TimestampType::LogAppendTime
    );
    Ok(())
}

#[test]
fn leader_epochs_are_recorded_and_stale_ones_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut log = new_log(dir.path(), small_config())?;
    log.append(&filler(2, 5, 0), 0, 0)?;
    log.append(&filler(3, 5, 0), 2, 0)?;
    log.append(&filler(1, 5, 0), 2, 0)?;
    assert!(matches!(
        log.append(&filler(1, 5, 0), 1, 0),
        Err(Error::StaleLeaderEpoch {
            leader_epoch: 1,
            latest_epoch: 2
        })
    ));
    assert_eq!(log.end_offset_for_epoch(0), Some((0, 2)));
    assert_eq!(log.end_offset_for_epoch(1), Some((0, 2)));
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 6)));
    let bytes = log.read(2, 1 << 20, i64::MAX)?;
    assert_eq!(
        fjord_record::batches(&bytes)
            .next()
            .expect("a batch")?
            .header
            .partition_leader_epoch,
        2
    );
    let epochs = log.leader_epochs().to_vec();
    log.close()?;
    let (mut log, _) = Log::open(dir.path(), small_config(), pool(), Recovery::Full, 0)?;
    assert_eq!(log.leader_epochs(), &epochs[..]);
    // Truncation drops the epochs that started past the new end.
    log.truncate_to(3)?;
    assert_eq!(
        log.log_end_offset(),
        2,
        "the batch holding offset 3 goes whole"
    );
    assert_eq!(log.end_offset_for_epoch(2), Some((0, 2)));
    Ok(())
}

#[test]
fn delete_records_and_retention_move_the_log_start_offset() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = TopicConfig {
        retention_bytes: Some(3_000),
        retention_ms: Some(10_000),
        ..small_config()
    };
    let mut log = new_log(dir.path(), config)?;
    for i in 0..20 {
        log.append(&filler(2, 200, i * 1_000), 0, 0)?;
    }
    log.set_high_watermark(log.log_end_offset());
    assert!(matches!(
        log.delete_records(41),
        Err(Error::Partition(Refused::OffsetOutOfRange { .. }))
    ));
    assert_eq!(log.delete_records(5)?, 5);
    assert!(matches!(
        log.read(4, 100, i64::MAX),
        Err(Error::Partition(Refused::OffsetOutOfRange { .. }))
    ));
    assert_eq!(read_all(&log)?.first().map(|r| r.offset), Some(5));
    let before = log.size_bytes();
    let outcome = log.apply_retention(0)?;
    assert!(outcome.deleted_segments > 0 && log.size_bytes() < before);
    assert!(log.size_bytes() < 3_000 + 1_024, "{}", log.size_bytes());
    // By time: everything older than 10 s before "now" goes, the active segment included.
    log.apply_retention(40_000)?;
    assert_eq!(log.log_start_offset(), 40);
    assert!(read_all(&log)?.is_empty());
    log.append(&filler(1, 1, 0), 0, 0)?;
    assert_eq!(read_all(&log)?.first().map(|r| r.offset), Some(40));
    Ok(())
}

#[test]
fn store_restarts_cleanly_and_after_a_crash() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let tp = TopicPartition::new("orders", 3);
    let config = TopicConfig {
        flush: FlushPolicy::EveryBatch,
        ..small_config()
    };
    let store = Store::open(dir.path())?;
    let mut log = store.create_log(&tp, config.clone(), 0)?;
    for _ in 0..10 {
        log.append(&filler(3, 100, 0), 0, 0)?;
    }
    let expected = read_all(&log)?;
    store.close([log])?;
    let store = Store::open(dir.path())?;
    assert_eq!(store.recovery(), Recovery::Trusted);
    assert_eq!(store.partitions()?, vec![tp.clone()]);
    let (mut log, report) = store.open_log(&tp, config.clone(), 0)?;
    assert_eq!(report.recovered_segments, 0);
    assert_eq!(read_all(&log)?, expected);
    log.append(&filler(1, 1, 0), 0, 0)?;
    drop(log); // a crash: no close, no marker
    drop(store);
    let store = Store::open(dir.path())?;
    assert_eq!(store.recovery(), Recovery::Full);
    let (log, report) = store.open_log(&tp, config, 0)?;
    assert!(report.recovered_segments >= 1);
    assert_eq!(log.log_end_offset(), 31);
    store.delete_log(log)?;
    assert!(store.partitions()?.is_empty());
    Ok(())
}

#[test]
fn read_into_appends_after_what_the_buffer_holds() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut log = new_log(dir.path(), small_config())?;
    let first = filler(3, 10, 0);
    let second = filler(2, 10, 0);
    log.append(&first, 0, 0)?;
    log.append(&second, 0, 0)?;
    let (first, second) = (assigned(&first, 0), assigned(&second, 3));
    let mut out = b"response header".to_vec();
    let appended = log.read_into(0, first.len(), i64::MAX, &mut out)?;
    assert_eq!(appended, first.len());
    assert_eq!(&out[..15], b"response header");
    assert_eq!(&out[15..], &first[..]);
    // The next read continues where this one ended (the sequential-consumer fast path).
    let appended = log.read_into(3, 1 << 20, i64::MAX, &mut out)?;
    assert_eq!(appended, second.len());
    assert_eq!(&out[15 + first.len()..], &second[..]);
    // Nothing to read appends nothing.
    assert_eq!(log.read_into(5, 1 << 20, i64::MAX, &mut out)?, 0);
    Ok(())
}

#[test]
fn the_interval_flush_policy_syncs_once_the_interval_has_passed() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = TopicConfig {
        flush: FlushPolicy::IntervalMs(100),
        ..small_config()
    };
    let mut log = new_log(dir.path(), config)?;
    log.append(&filler(2, 10, 0), 0, 1_000)?;
    log.append(&filler(2, 10, 0), 0, 1_050)?;
    assert_eq!(
        log.recovery_point(),
        0,
        "nothing is synced before the interval"
    );
    log.flush_if_due(1_099)?;
    assert_eq!(log.recovery_point(), 0);
    log.flush_if_due(1_100)?;
    assert_eq!(
        log.recovery_point(),
        4,
        "synced 100 ms after the first unsynced append"
    );
    // The interval restarts at the next append; an append past it syncs by itself.
    log.append(&filler(1, 10, 0), 0, 2_000)?;
    assert_eq!(log.recovery_point(), 4);
    log.append(&filler(1, 10, 0), 0, 2_100)?;
    assert_eq!(log.recovery_point(), 6);
    Ok(())
}

#[test]
fn compression_type_re_encodes_batches_with_the_topic_codec() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = TopicConfig {
        compression: Some(Compression::Zstd),
        ..small_config()
    };
    let mut log = new_log(dir.path(), config)?;
    let records: Vec<_> = (0..5i64)
        .map(|i| {
            (
                Some(&b"key"[..]),
                Some(&b"a compressible value, value, value"[..]),
                i,
            )
        })
        .collect();
    for codec in [Compression::Gzip, Compression::None, Compression::Zstd] {
        log.append(&batch(&records, codec), 0, 7)?;
    }
    let stored = log.read(0, 1 << 20, i64::MAX)?;
    let codecs: Vec<_> = fjord_record::batches(&stored)
        .map(|b| b.and_then(|b| b.compression()))
        .collect::<Result<_, _>>()?;
    assert_eq!(codecs, [Compression::Zstd; 3]);
    let read = decode(&stored)?;
    assert_eq!(read.len(), 15);
    for (offset, record) in read.iter().enumerate() {
        assert_eq!(record.offset, offset as i64);
        assert_eq!(record.timestamp, offset as i64 % 5);
        assert_eq!(
            record.value.as_deref(),
            Some(&b"a compressible value, value, value"[..])
        );
    }
    Ok(())
}

/// After a crash an intact log is recovered without writing: reopening thousands of idle
/// partitions must not cost thousands of syncs. The checkpoint file is replaced (a new
/// inode) only when its content changes.
#[test]
fn recovering_an_intact_log_writes_nothing() -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir()?;
    let inode = || std::fs::metadata(dir.path().join("fjord.checkpoint")).map(|m| m.ino());
    let log = new_log(dir.path(), small_config())?;
    log.close()?;
    let before = inode()?;
    let (log, report) = Log::open(dir.path(), small_config(), pool(), Recovery::Full, 0)?;
    assert!(report.truncated.is_none());
    assert_eq!(inode()?, before, "an empty log: nothing rewritten");
    log.close()?;

    let mut log = Log::open(dir.path(), small_config(), pool(), Recovery::Full, 0)?.0;
    log.append(&filler(5, 100, 1_000), 0, 1_000)?;
    log.flush()?;
    log.close()?;
    let before = inode()?;
    let (log, _) = Log::open(dir.path(), small_config(), pool(), Recovery::Full, 0)?;
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(inode()?, before, "synced to its end: nothing rewritten");
    Ok(())
}

/// `batch` as the log stores it from `base_offset`: offsets assigned in its header.
fn assigned(batch: &[u8], base_offset: i64) -> Vec<u8> {
    let mut stored = batch.to_vec();
    fjord_record::assign(&mut stored, base_offset, 0).expect("a whole batch");
    stored
}
