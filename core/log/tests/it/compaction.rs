use fjord_log::TopicConfig;
use fjord_record::Compression;

use crate::support::{batch, compact_config, new_log, read_all};

#[test]
fn compaction_keeps_the_latest_value_per_key_and_the_offsets() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut log = new_log(dir.path(), compact_config())?;
    for round in 0..30u8 {
        let codec = Compression::ALL[usize::from(round) % 5];
        let value = [round; 40];
        let records = [
            (Some(&b"a"[..]), Some(&value[..]), 0),
            (Some(&[b'k', round % 4][..]), Some(&value[..]), 0),
        ];
        log.append(&batch(&records, codec), 0, 0)?;
    }
    let before = read_all(&log)?;
    log.set_high_watermark(log.log_end_offset());
    let outcome = log.compact(0)?;
    assert!(
        outcome.records_removed > 0 && outcome.bytes_after < outcome.bytes_before,
        "{outcome:?}"
    );
    let after = read_all(&log)?;
    assert!(after.len() < before.len());
    for record in &after {
        assert_eq!(
            before.iter().find(|r| r.offset == record.offset),
            Some(record)
        );
    }
    // The latest "a" lives in the active segment; every k0..k3 keeps its latest value.
    for key in [&b"a"[..], b"k\x00", b"k\x01", b"k\x02", b"k\x03"] {
        let latest = before
            .iter()
            .rev()
            .find(|r| r.key.as_deref() == Some(key))
            .expect("key written");
        assert!(after.contains(latest), "latest {key:?} lost");
    }
    Ok(())
}

#[test]
fn tombstones_outlive_delete_retention_then_go() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut log = new_log(
        dir.path(),
        TopicConfig {
            delete_retention_ms: 1_000,
            ..compact_config()
        },
    )?;
    let big = [7u8; 300];
    log.append(
        &batch(&[(Some(b"gone"), Some(&big), 100)], Compression::None),
        0,
        0,
    )?;
    log.append(
        &batch(&[(Some(b"gone"), None, 100)], Compression::None),
        0,
        0,
    )?;
    for _ in 0..6 {
        log.append(
            &batch(&[(Some(b"other"), Some(&big), 100)], Compression::None),
            0,
            0,
        )?;
    }
    log.set_high_watermark(log.log_end_offset());
    log.compact(500)?;
    let left = read_all(&log)?;
    assert!(
        left.iter()
            .any(|r| r.key.as_deref() == Some(b"gone") && r.value.is_none()),
        "tombstone kept within delete.retention.ms"
    );
    assert!(
        !left
            .iter()
            .any(|r| r.key.as_deref() == Some(b"gone") && r.value.is_some())
    );
    log.compact(5_000)?;
    assert!(
        !read_all(&log)?
            .iter()
            .any(|r| r.key.as_deref() == Some(b"gone")),
        "tombstone dropped after delete.retention.ms"
    );
    Ok(())
}

#[test]
fn appends_continue_while_compaction_runs() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut log = new_log(dir.path(), compact_config())?;
    let value = [1u8; 200];
    for _ in 0..20 {
        log.append(
            &batch(&[(Some(b"same"), Some(&value), 0)], Compression::None),
            0,
            0,
        )?;
    }
    log.set_high_watermark(log.log_end_offset());
    let plan = log.compaction_plan(0).expect("sealed segments to clean");
    let worker = std::thread::spawn(move || plan.run());
    for _ in 0..20 {
        log.append(
            &batch(&[(Some(b"same"), Some(&value), 0)], Compression::None),
            0,
            0,
        )?;
    }
    let compacted = worker
        .join()
        .map_err(|_| anyhow::anyhow!("compaction thread panicked"))??;
    let outcome = log.install_compaction(compacted)?;
    assert!(outcome.segments_cleaned > 0);
    assert_eq!(log.log_end_offset(), 40);
    let left = read_all(&log)?;
    assert_eq!(left.last().map(|r| r.offset), Some(39));
    assert!(left.len() < 40);
    // Restart: the cleaned segments and their indexes are what is on disk now.
    log.close()?;
    let (log, _) = fjord_log::Log::open(
        dir.path(),
        compact_config(),
        crate::support::pool(),
        fjord_log::Recovery::Full,
        0,
    )?;
    assert_eq!(read_all(&log)?, left);
    Ok(())
}

/// Appends `rounds` batches of two 40-byte records with keys unique to `prefix` and the
/// round (so compaction removes nothing), at `timestamp_ms`.
fn fill(log: &mut fjord_log::Log, prefix: u8, rounds: u8, timestamp_ms: i64) -> anyhow::Result<()> {
    for round in 0..rounds {
        let value = [round; 40];
        let records = [
            (
                Some(&[prefix, round, 0][..]),
                Some(&value[..]),
                timestamp_ms,
            ),
            (
                Some(&[prefix, round, 1][..]),
                Some(&value[..]),
                timestamp_ms,
            ),
        ];
        log.append(&batch(&records, Compression::None), 0, timestamp_ms)?;
    }
    Ok(())
}

#[test]
fn compaction_is_due_by_dirty_ratio_and_by_lag() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut log = new_log(dir.path(), compact_config())?;
    log.set_high_watermark(log.log_end_offset());
    assert!(!log.compaction_due(0), "no sealed segment yet");
    fill(&mut log, 0, 40, 10)?;
    log.set_high_watermark(log.log_end_offset());
    assert!(log.compaction_due(10), "everything sealed is dirty");
    log.compact(10)?;
    assert!(!log.compaction_due(10), "nothing dirty after a round");

    // One more sealed segment: dirty, but a small share of the sealed bytes.
    let sealed_before = log.segment_count();
    let mut prefix = 1;
    while log.segment_count() < sealed_before + 1 {
        fill(&mut log, prefix, 1, 20)?;
        prefix += 1;
        log.set_high_watermark(log.log_end_offset());
    }
    assert!(
        !log.compaction_due(20),
        "below min.cleanable.dirty.ratio 0.5"
    );
    let eager = TopicConfig {
        min_cleanable_dirty_ratio: 0.01,
        ..compact_config()
    };
    log.set_config(eager.clone())?;
    assert!(log.compaction_due(20));
    // min.compaction.lag.ms holds back segments with records newer than the lag.
    log.set_config(TopicConfig {
        min_compaction_lag_ms: 1_000,
        ..eager
    })?;
    assert!(!log.compaction_due(500));
    assert!(log.compaction_due(1_020));
    // max.compaction.lag.ms forces a round whatever the ratio.
    log.set_config(TopicConfig {
        max_compaction_lag_ms: 100,
        ..compact_config()
    })?;
    assert!(!log.compaction_due(50));
    assert!(log.compaction_due(120));
    Ok(())
}

#[test]
fn truncating_into_a_compacted_gap_never_reuses_offsets() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut log = new_log(dir.path(), compact_config())?;
    for round in 0..40u8 {
        let value = [round; 40];
        log.append(
            &batch(&[(Some(&b"a"[..]), Some(&value[..]), 0)], Compression::None),
            0,
            0,
        )?;
    }
    log.set_high_watermark(log.log_end_offset());
    log.compact(0)?;
    let kept: Vec<i64> = read_all(&log)?.iter().map(|r| r.offset).collect();
    // The last offset compaction removed below kept data: far from its segment's base.
    let gap = (0..log.log_end_offset())
        .rev()
        .find(|o| !kept.contains(o) && kept.iter().any(|k| k > o))
        .expect("compaction left a gap");
    log.truncate_to(gap)?;
    assert_eq!(
        log.log_end_offset(),
        gap,
        "offsets below {gap} were handed out once"
    );
    let info = log.append(
        &batch(&[(Some(&b"b"[..]), Some(&b"v"[..]), 0)], Compression::None),
        0,
        0,
    )?;
    assert_eq!(info.base_offset, gap);
    assert!(log.log_start_offset() <= gap);
    // The gap between segments survives a crash and recovery.
    drop(log);
    let (log, report) = fjord_log::Log::open(
        dir.path(),
        compact_config(),
        fjord_log::FilePool::new(8),
        fjord_log::Recovery::Full,
        0,
    )?;
    assert!(report.truncated.is_none(), "{report:?}");
    assert_eq!(log.log_end_offset(), gap + 1);
    Ok(())
}
