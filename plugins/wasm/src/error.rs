//! What can go wrong loading or starting a processor's component.

/// Errors of this crate. A call's own failures are `fjord_processor::CallError`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the module is {size_bytes} bytes; the limit is {size_bytes_max}")]
    ModuleTooLarge {
        size_bytes: usize,
        size_bytes_max: usize,
    },
    #[error("not a WebAssembly file (it does not start with `\\0asm`)")]
    NotWasm,
    #[error(
        "a core WebAssembly module, not a component: build it with `cargo build --target wasm32-wasip2` \
         (or wrap it with `wasm-tools component new`)"
    )]
    NotAComponent,
    #[error("the component does not compile: {message}")]
    Compile { message: String },
    #[error(
        "the component was built for `{import}`, which this broker does not serve: it serves \
         fjord:processor@{served}; upgrade the broker or build the processor with an older SDK"
    )]
    UnsupportedWorld {
        import: String,
        served: &'static str,
    },
    #[error(
        "the component imports `{import}`, which a processor may not use: only fjord:processor and \
         the WASI interfaces a Rust program links are offered"
    )]
    UnknownImport { import: String },
    #[error("the component does not fit the processor world: {message}")]
    Link { message: String },
    #[error("the processor trapped while starting: {message}")]
    Start { message: String },
    #[error("the processor refused its configuration: {message}")]
    Config { message: String },
    #[error("the wasm engine could not be set up: {message}")]
    Engine { message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
