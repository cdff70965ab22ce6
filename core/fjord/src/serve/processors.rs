//! Processors in `fjord serve`: the Wasm runtime (compiled modules cached under the data
//! directory), the call threads, and the deployments stored there.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use fjord_engine::Engine;
use fjord_processor::{CallPool, Processors};
use fjord_wasm::{Runtime, RuntimeConfig};

/// Opens the broker's processors and starts those deployed and not paused.
pub(super) async fn open(
    engine: &Arc<Engine>,
    data_dir: &Path,
    threads: usize,
) -> anyhow::Result<Arc<Processors>> {
    let runtime = Runtime::new(RuntimeConfig {
        cache_directory: Some(data_dir.join("wasm-cache")),
        ..RuntimeConfig::default()
    })
    .context("starting the WebAssembly runtime")?;
    let pool = CallPool::new(threads).context("starting the processor call threads")?;
    let processors = Processors::open(
        Arc::clone(engine),
        Arc::new(runtime),
        pool,
        data_dir.join("processors"),
    )
    .await
    .context("loading the deployed processors")?;
    Ok(processors)
}
