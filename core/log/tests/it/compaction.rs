use fjord_log::LogConfig;
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
        log.append(&mut batch(&records, codec), 0, 0)?;
    }
    let before = read_all(&log)?;
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
        LogConfig {
            delete_retention_ms: 1_000,
            ..compact_config()
        },
    )?;
    let big = [7u8; 300];
    log.append(
        &mut batch(&[(Some(b"gone"), Some(&big), 100)], Compression::None),
        0,
        0,
    )?;
    log.append(
        &mut batch(&[(Some(b"gone"), None, 100)], Compression::None),
        0,
        0,
    )?;
    for _ in 0..6 {
        log.append(
            &mut batch(&[(Some(b"other"), Some(&big), 100)], Compression::None),
            0,
            0,
        )?;
    }
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
            &mut batch(&[(Some(b"same"), Some(&value), 0)], Compression::None),
            0,
            0,
        )?;
    }
    let plan = log.compaction_plan(0).expect("sealed segments to clean");
    let worker = std::thread::spawn(move || plan.run());
    for _ in 0..20 {
        log.append(
            &mut batch(&[(Some(b"same"), Some(&value), 0)], Compression::None),
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
