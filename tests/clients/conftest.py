"""Starts a real `fjord serve` process for each test that asks for a broker."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("FJORD_BIN", ROOT / "target" / "debug" / "fjord"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.port = free_port()
        self.metrics_port = free_port()
        self.process = None
        self.log = data_dir.parent / f"broker-{self.port}.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, *extra: str, flags: bool = True, env: dict | None = None) -> "Broker":
        """Starts `fjord serve` with this broker's address, data directory and metrics address
        as flags (unless `flags` is false: then `extra` and `env` must give them)."""
        log = open(self.log, "ab")
        own = ["--listen", self.bootstrap, "--data-dir", str(self.data_dir),
               "--metrics-listen", f"127.0.0.1:{self.metrics_port}"] if flags else []
        self.process = subprocess.Popen(
            [str(BINARY), "serve", *own, *extra],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=None if env is None else {**os.environ, **env},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"fjord serve exited: {self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as probe:
                    # A connect to a port nobody listens on can meet itself (TCP
                    # simultaneous open from the same port): that is not the broker.
                    if probe.getsockname() != probe.getpeername():
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("fjord serve did not start listening")

    def stop(self) -> int:
        """SIGTERM and wait: the clean shutdown path."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    def kill(self) -> None:
        """SIGKILL: the crash path."""
        self.process.kill()
        self.process.wait(timeout=30)

    def alive(self) -> bool:
        return self.process.poll() is None


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "data").start()
    yield b
    if b.alive():
        assert b.stop() == 0, b.log.read_text()
