//! A `fjord serve` child process on loopback, for tests and benchmarks that drive the real
//! binary with Kafka clients. Included by path (`#[path]`), so each includer uses only part
//! of it.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};

/// What a broker that stopped before it listened is reported as.
const EXITED_EARLY: &str = "fjord serve exited before listening";

/// How long the broker may take to start listening.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// A `fjord serve` child process; killed when dropped.
pub(crate) struct FjordServe {
    child: Child,
    pub(crate) bootstrap: String,
}

impl FjordServe {
    /// Starts a broker on a free port over `data_dir`, with `extra_args` after the defaults.
    /// The port is free when chosen but may be taken before the broker binds it (by another
    /// test's broker): then the broker exits, and another port is tried.
    pub(crate) fn start(data_dir: &Path, extra_args: &[&str]) -> anyhow::Result<Self> {
        let mut attempts = 0;
        loop {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            match Self::start_on(data_dir, port, extra_args) {
                Err(error) if attempts < 2 && error.to_string().contains(EXITED_EARLY) => {
                    attempts += 1;
                }
                started => return started,
            }
        }
    }

    /// [`Self::start`] on a given port (a restart where clients expect the same address).
    pub(crate) fn start_on(
        data_dir: &Path,
        port: u16,
        extra_args: &[&str],
    ) -> anyhow::Result<Self> {
        let bootstrap = format!("127.0.0.1:{port}");
        let mut command = Command::new(env!("CARGO_BIN_EXE_fjord"));
        command.args(["serve", "--listen", &bootstrap]);
        if !extra_args.contains(&"--metrics-listen") {
            command.args(["--metrics-listen", "off"]);
        }
        let child = command
            .args(extra_args)
            .arg("--data-dir")
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .context("starting fjord serve")?;
        let mut broker = Self { child, bootstrap };
        let deadline = Instant::now() + START_DEADLINE;
        while !listening(&broker.bootstrap) {
            if let Some(status) = broker.child.try_wait()? {
                bail!("{EXITED_EARLY}: {status}");
            }
            ensure!(
                Instant::now() < deadline,
                "fjord serve did not start listening"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(broker)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn port(&self) -> anyhow::Result<u16> {
        let (_, port) = self.bootstrap.rsplit_once(':').context("no port")?;
        Ok(port.parse()?)
    }

    /// SIGKILL: no shutdown, no flush beyond what the write path already did.
    pub(crate) fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

/// Whether something listens at `address`. A connect to a port nobody listens on can meet
/// itself (TCP simultaneous open, when the kernel picks that same port as the source port),
/// which is not the broker.
fn listening(address: &str) -> bool {
    TcpStream::connect(address)
        .is_ok_and(|stream| stream.local_addr().ok() != stream.peer_addr().ok())
}

impl Drop for FjordServe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
