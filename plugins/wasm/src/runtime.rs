//! One wasmtime engine per broker: compiles components (once, cached on disk) and checks
//! that they fit the processor world before anything runs.

use std::path::PathBuf;
use std::sync::Arc;

use fjord_processor::limits::{MODULE_BYTES_CEILING, MODULE_BYTES_DEFAULT};
use fjord_processor::{ProcessorLimits, StateStore};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Cache, CacheConfig, Config, Engine, OptLevel};

use crate::bindings::{Processor, ProcessorPre};
use crate::error::{Error, Result};
use crate::instance::{Instance, TaskData};
use crate::world;

/// How the engine is set up.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled components are kept between runs (`None`: compile every time).
    pub cache_directory: Option<PathBuf>,
    /// The largest component accepted, in bytes (at most `MODULE_BYTES_CEILING`).
    pub module_bytes_max: usize,
}

impl Default for RuntimeConfig {
    fn default() -> RuntimeConfig {
        RuntimeConfig {
            cache_directory: None,
            module_bytes_max: MODULE_BYTES_DEFAULT,
        }
    }
}

/// The engine and the host's imports, shared by every processor of the broker.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    linker: Arc<Linker<TaskData>>,
    module_bytes_max: usize,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("module_bytes_max", &self.module_bytes_max)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> Result<Runtime> {
        let mut engine_config = Config::new();
        engine_config.wasm_component_model(true);
        // Fuel, not epochs: running out is a property of the batch, so a replay fails alike.
        engine_config.consume_fuel(true);
        engine_config.cranelift_opt_level(OptLevel::Speed);
        if let Some(directory) = &config.cache_directory {
            let mut cache_config = CacheConfig::new();
            cache_config.with_directory(directory);
            let cache = Cache::new(cache_config).map_err(engine_error)?;
            engine_config.cache(Some(cache));
        }
        let engine = Engine::new(&engine_config).map_err(engine_error)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(engine_error)?;
        Processor::add_to_linker::<TaskData, HasSelf<TaskData>>(&mut linker, |data| data)
            .map_err(engine_error)?;
        Ok(Runtime {
            engine,
            linker: Arc::new(linker),
            module_bytes_max: config.module_bytes_max.min(MODULE_BYTES_CEILING),
        })
    }

    /// Compiles a component and checks it against the processor world: its imports at a
    /// version this host serves, its exports all there.
    pub fn compile(&self, bytes: &[u8]) -> Result<Module> {
        if bytes.len() > self.module_bytes_max {
            return Err(Error::ModuleTooLarge {
                size_bytes: bytes.len(),
                size_bytes_max: self.module_bytes_max,
            });
        }
        world::check_header(bytes)?;
        let component = Component::new(&self.engine, bytes).map_err(|error| Error::Compile {
            message: format!("{error:#}"),
        })?;
        world::check_imports(&self.engine, &component)?;
        let instance_pre =
            self.linker
                .instantiate_pre(&component)
                .map_err(|error| Error::Link {
                    message: format!("{error:#}"),
                })?;
        let pre = ProcessorPre::new(instance_pre).map_err(|error| Error::Link {
            message: format!("{error:#}"),
        })?;
        Ok(Module {
            engine: self.engine.clone(),
            pre,
        })
    }
}

/// A compiled processor, ready to start one instance per task.
#[derive(Clone)]
pub struct Module {
    engine: Engine,
    pre: ProcessorPre<TaskData>,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module").finish_non_exhaustive()
    }
}

impl Module {
    /// Starts an instance for one task: `init` with the deployment's settings, under the
    /// processor's limits, with the task's state store.
    pub fn instantiate(
        &self,
        settings: &[(String, String)],
        limits: ProcessorLimits,
        state: StateStore,
    ) -> Result<Instance> {
        Instance::start(&self.engine, &self.pre, settings, limits, state)
    }
}

fn engine_error(error: wasmtime::Error) -> Error {
    Error::Engine {
        message: format!("{error:#}"),
    }
}

impl fjord_processor::TransformFactory for Module {
    fn start(
        &self,
        settings: &[(String, String)],
        limits: ProcessorLimits,
        state: StateStore,
    ) -> std::result::Result<Box<dyn fjord_processor::Transform>, String> {
        let instance = self
            .instantiate(settings, limits, state)
            .map_err(|error| error.to_string())?;
        Ok(Box::new(instance))
    }
}

impl fjord_processor::ModuleLoader for Runtime {
    fn load(
        &self,
        module: &[u8],
    ) -> std::result::Result<Arc<dyn fjord_processor::TransformFactory>, String> {
        let module = self.compile(module).map_err(|error| error.to_string())?;
        Ok(Arc::new(module))
    }
}
