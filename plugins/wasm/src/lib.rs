//! Fjord's WebAssembly host: runs processors built with `fjord-sdk` as wasmtime
//! components, each task in its own sandbox, under hard limits.
//!
//! [`Runtime`] is one wasmtime engine for the broker; [`Runtime::compile`] turns a `.wasm`
//! file into a [`Module`] after checking that it is a component of the processor world at a
//! version this host serves; [`Module::instantiate`] starts one [`Instance`] per task (input
//! partition), which implements `fjord_processor::Transform`: one call per batch.
//!
//! # Why it is built this way
//! - **The WIT package is the whole contract** (`sdk/wit/processor.wit`, bound here with
//!   wasmtime's `bindgen!`). A guest importing anything else (but the WASI a Rust program
//!   links) is refused at deploy time, by name; so is a guest of a newer world.
//! - **Limits are real.** Fuel per call stops an endless loop (fuel rather than epochs: a
//!   batch that runs out runs out again on replay); a `ResourceLimiter` caps memory and
//!   tables; outputs are counted and measured; state has its own limits. A trap is contained
//!   in its instance, which the caller discards.
//! - **Deterministic guests.** WASI gives no files, sockets, environment or arguments; its
//!   clocks read the call's time and its random numbers come from the call's seed.
//! - **Calls are synchronous and CPU-bound**: the caller runs them on threads of its own,
//!   never on async workers. wasmtime and its compile times stay in this crate.
//!
//! # Invariants
//! - No guest input panics the host: every failure is an [`Error`] or a
//!   `fjord_processor::CallError`.
//! - An instance that failed a call is never called again.

mod bindings;
mod determinism;
mod error;
mod host;
mod instance;
mod runtime;
mod world;

pub use error::{Error, Result};
pub use instance::Instance;
pub use runtime::{Module, Runtime, RuntimeConfig};
