//! Damage on disk: flipped bytes, cut files, deleted or garbage indexes and checkpoints.

use std::path::{Path, PathBuf};

use fjord_log::{Error, Log, Recovery};

use crate::support::{filler, new_log, pool, read_all, small_config};

/// A log of 30 two-record batches over several segments, closed cleanly.
fn written_log(dir: &Path) -> anyhow::Result<Vec<crate::support::Rec>> {
    let mut log = new_log(dir, small_config())?;
    for i in 0..30 {
        log.append(&filler(2, 150, 1_000 + i), 0, 0)?;
    }
    let records = read_all(&log)?;
    log.close()?;
    Ok(records)
}

fn files(dir: &Path, suffix: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    found.retain(|p| p.extension().is_some_and(|e| e == suffix));
    found.sort();
    Ok(found)
}

fn flip(path: &Path, position: u64) -> anyhow::Result<()> {
    let mut bytes = std::fs::read(path)?;
    bytes[position as usize] ^= 0x5a;
    std::fs::write(path, bytes)?;
    Ok(())
}

fn reopen(dir: &Path, recovery: Recovery) -> anyhow::Result<(Log, fjord_log::OpenReport)> {
    Ok(Log::open(dir, small_config(), pool(), recovery, 0)?)
}

#[test]
fn a_flipped_byte_in_an_old_segment_is_reported_never_served() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let records = written_log(dir.path())?;
    let first = files(dir.path(), "log")?[0].clone();
    flip(&first, 100)?;
    for recovery in [Recovery::Trusted, Recovery::Full] {
        let (log, _) = reopen(dir.path(), recovery)?;
        match log.read(0, 1 << 20, i64::MAX) {
            Err(Error::Corrupt { path, position, .. }) => {
                assert_eq!(path, first);
                assert_eq!(position, 0, "the damaged batch starts the file");
            }
            other => panic!("expected corruption to be reported, got {other:?}"),
        }
        // Data in the other segments still reads.
        let later = records.last().expect("records").offset;
        assert!(!log.read(later, 1 << 20, i64::MAX)?.is_empty());
        log.close()?;
    }
    Ok(())
}

#[test]
fn a_damaged_active_segment_is_cut_at_the_last_good_batch_after_a_crash() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let records = written_log(dir.path())?;
    let active = files(dir.path(), "log")?.pop().expect("segments");
    let len = std::fs::metadata(&active)?.len();
    flip(&active, len - 5)?;
    let (mut log, report) = reopen(dir.path(), Recovery::Full)?;
    let (path, _, reason) = report.truncated.expect("the damaged batch is cut");
    assert_eq!(path, active);
    assert!(reason.contains("CRC"), "{reason}");
    let left = read_all(&log)?;
    assert_eq!(left.len(), records.len() - 2);
    assert_eq!(&left[..], &records[..left.len()]);
    log.append(&filler(1, 1, 0), 0, 0)?;
    assert_eq!(read_all(&log)?.len(), left.len() + 1);
    Ok(())
}

#[test]
fn a_torn_tail_is_truncated() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let records = written_log(dir.path())?;
    let active = files(dir.path(), "log")?.pop().expect("segments");
    let len = std::fs::metadata(&active)?.len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&active)?
        .set_len(len - 100)?;
    let (log, report) = reopen(dir.path(), Recovery::Full)?;
    assert!(report.truncated.is_some());
    assert_eq!(read_all(&log)?, records[..records.len() - 2]);
    // Garbage appended after the last batch (a torn write of a new batch) goes too.
    let mut bytes = std::fs::read(&active)?;
    bytes.extend_from_slice(&[0xab; 37]);
    std::fs::write(&active, bytes)?;
    drop(log);
    let (log, report) = reopen(dir.path(), Recovery::Full)?;
    assert!(report.truncated.is_some());
    assert_eq!(read_all(&log)?, records[..records.len() - 2]);
    Ok(())
}

#[test]
fn deleted_or_garbage_indexes_are_rebuilt_or_bypassed() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let records = written_log(dir.path())?;
    for path in files(dir.path(), "index")? {
        std::fs::remove_file(path)?;
    }
    for path in files(dir.path(), "timeindex")? {
        let len = std::fs::metadata(&path)?.len() as usize;
        std::fs::write(&path, vec![0x7f; len.max(12)])?;
    }
    let (log, _) = reopen(dir.path(), Recovery::Trusted)?;
    assert_eq!(read_all(&log)?, records);
    assert_eq!(log.offset_for_timestamp(1_010)?.map(|f| f.offset), Some(20));
    assert!(!files(dir.path(), "index")?.is_empty(), "indexes rebuilt");
    log.close()?;
    // Garbage of a plausible shape: whole entries, in order, pointing at the wrong batches.
    for path in files(dir.path(), "index")? {
        let entries = std::fs::metadata(&path)?.len() / 8;
        let mut bytes = Vec::new();
        for i in 0..entries.max(2) as u32 {
            bytes.extend_from_slice(&i.to_be_bytes());
            bytes.extend_from_slice(&(i * 3).to_be_bytes());
        }
        std::fs::write(&path, bytes)?;
    }
    let (log, _) = reopen(dir.path(), Recovery::Trusted)?;
    assert_eq!(read_all(&log)?, records);
    for record in records.iter().step_by(7) {
        let bytes = log.read(record.offset, 1, i64::MAX)?;
        assert!(
            crate::support::decode(&bytes)?.iter().any(|r| r == record),
            "offset {}",
            record.offset
        );
    }
    Ok(())
}

#[test]
fn a_garbage_checkpoint_means_full_recovery_not_data_loss() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let records = written_log(dir.path())?;
    std::fs::write(
        dir.path().join("fjord.checkpoint"),
        b"fjord-log-checkpoint v1\nlog_start_offset 99\n",
    )?;
    std::fs::write(
        dir.path().join("leader-epoch-checkpoint"),
        b"\xff\xfe garbage",
    )?;
    let (log, report) = reopen(dir.path(), Recovery::Full)?;
    assert!(report.recovered_segments > 1, "{report:?}");
    assert_eq!(log.log_start_offset(), 0);
    assert_eq!(read_all(&log)?, records);
    assert_eq!(log.end_offset_for_epoch(0), Some((0, 60)));
    Ok(())
}
