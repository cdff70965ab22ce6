//! Start-up after `kill -9` with many empty partitions: the time from launching
//! `fjord serve` to its first ApiVersions answer, beside the same for an empty data
//! directory measured in the same run (the process's own start-up, the baseline).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::ensure;

use crate::fjord_serve::FjordServe;

/// Partitions per topic; `FJORD_BENCH_RESTART_PARTITIONS` (default 10,000) sets the total.
const PARTITIONS_PER_TOPIC: i32 = 100;

/// Creates the partitions, kills the broker with SIGKILL, and times a restart and a start
/// on an empty directory; prints both and their ratio.
pub(crate) fn measure(dir: &Path, partitions: i32) -> anyhow::Result<()> {
    let crashed = dir.join("crashed");
    let broker = FjordServe::start(&crashed, &[])?;
    let topics = (partitions / PARTITIONS_PER_TOPIC).max(1);
    for topic in 0..topics {
        crate::create_topic(
            &broker.bootstrap,
            &format!("idle-{topic}"),
            PARTITIONS_PER_TOPIC,
        )?;
    }
    broker.kill()?;
    let restart = first_answer(&crashed)?;
    let empty = first_answer(&dir.join("empty"))?;
    println!(
        "\nrestart after kill -9 with {} empty partitions: {:.2} s to the first ApiVersions answer \
         (empty data directory: {:.2} s; ratio {:.1})",
        topics * PARTITIONS_PER_TOPIC,
        restart.as_secs_f64(),
        empty.as_secs_f64(),
        restart.as_secs_f64() / empty.as_secs_f64().max(1e-3)
    );
    Ok(())
}

/// Launches `fjord serve` over `data_dir` and times it until an ApiVersions answer.
fn first_answer(data_dir: &Path) -> anyhow::Result<Duration> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let started = Instant::now();
    let broker = FjordServe::start_on(data_dir, port, &[])?;
    let mut stream = TcpStream::connect(&broker.bootstrap)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    // ApiVersions v0: size, api key 18, version 0, correlation id 1, null client id.
    stream.write_all(&[0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xff])?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    let elapsed = started.elapsed();
    ensure!(i32::from_be_bytes(size) > 0, "an ApiVersions answer");
    broker.kill()?;
    Ok(elapsed)
}
