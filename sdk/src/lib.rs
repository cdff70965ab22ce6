//! Fjord's processor SDK: write a stream processor in plain Rust, build it for
//! `wasm32-wasip2`, deploy it into `fjord serve` (or run it beside any Kafka cluster).
//!
//! A processor is a type that implements [`Processor`] (or one of the [`shapes`]: filter,
//! map, route, aggregate, tumbling window...) and is exported with [`export_processor!`]:
//!
//! ```
//! use fjord_sdk::{Config, Context, Error, Processor, Record};
//!
//! struct DropEmpty;
//!
//! impl Processor for DropEmpty {
//!     fn init(_config: &Config) -> Result<Self, String> {
//!         Ok(DropEmpty)
//!     }
//!
//!     fn process(&mut self, record: &Record, context: &mut Context<'_>) -> Result<(), Error> {
//!         if record.value.as_ref().is_some_and(|value| !value.is_empty()) {
//!             context.emit(record.forward());
//!         }
//!         Ok(())
//!     }
//! }
//!
//! fjord_sdk::export_processor!(DropEmpty);
//! ```
//!
//! # Why it is built this way
//! - **The contract is the WIT package** (`wit/processor.wit`, `fjord:processor@0.1.0`); the
//!   SDK turns it into plain Rust. The broker calls a component once per *batch* (the
//!   boundary copies every byte list, so per-record calls would cost more than most
//!   transforms); the SDK loops over the batch and calls [`Processor::process`] per record,
//!   so a failing record fails alone, and its outputs are dropped with it.
//! - **The same code compiles natively.** wit-bindgen is a dependency only for `wasm32`;
//!   natively, [`testing::TestRunner`] runs a processor against an in-memory host with the
//!   broker's semantics (state, TTLs, watermark, timers), so transforms are tested with
//!   plain `cargo test`.
//! - **This crate knows nothing of the host**: it depends on no broker crate.
//!
//! # Invariants
//! - The outputs of a record that failed are never returned; the failure names the record's
//!   place in the batch.
//! - An output without a timestamp gets its record's (or timer's) time, so a replay writes
//!   the same records.
//! - The only unsafe code is wit-bindgen's, in the `wasm32`-only bindings module.

mod context;
mod processor;
mod record;
pub mod shapes;
pub mod testing;

#[cfg(target_arch = "wasm32")]
mod guest;

pub use context::{Context, Host, Level, StateError};
pub use processor::{Config, Error, Processor, process_batch, process_timers};
pub use record::{BatchResult, Failure, Header, Output, Record, Timer};

/// The version of the WIT package this SDK builds components for.
pub const WIT_VERSION: &str = "0.1.0";

/// What [`export_processor!`] expands to; not part of the API.
#[doc(hidden)]
pub mod __private {
    #[cfg(target_arch = "wasm32")]
    pub use crate::guest::*;
}

/// Exports a [`Processor`] as the component's implementation of the `processor` world.
///
/// Natively this expands to nothing, so the same crate builds for tests.
#[macro_export]
macro_rules! export_processor {
    ($processor:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct FjordProcessorGuest;

            ::std::thread_local! {
                static FJORD_PROCESSOR: ::core::cell::RefCell<::core::option::Option<$processor>> =
                    const { ::core::cell::RefCell::new(::core::option::Option::None) };
            }

            impl $crate::__private::Guest for FjordProcessorGuest {
                fn init(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    $crate::__private::init(&FJORD_PROCESSOR, config)
                }

                fn process(
                    records: ::std::vec::Vec<$crate::__private::InputRecord>,
                ) -> $crate::__private::BatchResult {
                    $crate::__private::process(&FJORD_PROCESSOR, records)
                }

                fn on_timer(
                    timers: ::std::vec::Vec<$crate::__private::Timer>,
                ) -> $crate::__private::BatchResult {
                    $crate::__private::on_timer(&FJORD_PROCESSOR, timers)
                }
            }

            $crate::__private::bindings::__export_processor_world!(FjordProcessorGuest with_types_in $crate::__private::bindings);
        };
    };
}
