//! The guest components of the tests, built from source in this repository (the examples and
//! tests/guests) once per test binary, for `wasm32-wasip2` with the workspace's `guest`
//! profile, into `target/guests` (apart from the test build, whose target directory cargo
//! holds locked meanwhile). Tests never take `.wasm` files from anywhere else.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Every guest package, built in one cargo invocation.
const PACKAGES: &[&str] = &[
    "json-filter",
    "pii-redaction",
    "route-by-field",
    "iot-units",
    "fraud-rule",
    "sandbox-guest",
    "newer-world-guest",
    "foreign-import-guest",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

fn build_all() -> PathBuf {
    let root = workspace_root();
    let target_dir = root.join("target/guests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .current_dir(&root)
        .args([
            "build",
            "--locked",
            "--profile",
            "guest",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target_dir);
    for package in PACKAGES {
        command.args(["-p", package]);
    }
    let status = command.status().expect("cargo runs");
    assert!(
        status.success(),
        "building the guest components failed: {status}"
    );
    target_dir.join("wasm32-wasip2/guest")
}

/// The component of `package`, built on first use.
pub fn component(package: &str) -> Vec<u8> {
    std::fs::read(path(package)).unwrap_or_else(|error| panic!("{package}: {error}"))
}

/// The path of `package`'s component, built on first use.
pub fn path(package: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    assert!(
        PACKAGES.contains(&package),
        "{package} is not among the guests built"
    );
    let directory = BUILT.get_or_init(build_all);
    directory.join(format!("{}.wasm", package.replace('-', "_")))
}
