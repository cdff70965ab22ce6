use fjord_log::{FilePool, Log};

use crate::support::{filler, read_all, small_config};

/// Thousands of logs share a pool of a few files; every one stays readable and writable.
#[test]
fn many_logs_share_a_capped_pool_of_files() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let pool = FilePool::new(16);
    let mut logs = Vec::new();
    for i in 0..2_000 {
        let mut log = Log::create(
            &dir.path().join(format!("t-{i}")),
            small_config(),
            pool.clone(),
            0,
        )?;
        log.append(&filler(1, 8, 0), 0, 0)?;
        logs.push(log);
        assert!(pool.open_files() <= 16);
    }
    for log in logs.iter_mut().step_by(7) {
        log.append(&filler(2, 8, 0), 0, 0)?;
    }
    for (i, log) in logs.iter().enumerate() {
        let expected = if i % 7 == 0 { 3 } else { 1 };
        assert_eq!(read_all(log)?.len(), expected, "log {i}");
    }
    assert!(pool.open_files() <= 16);
    Ok(())
}
