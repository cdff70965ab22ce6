//! Which components a processor may be: checked before anything runs, with errors that say
//! what to do.

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::bindings::SERVED_VERSION;
use crate::error::{Error, Result};

/// `\0asm`, then the binary format's version and layer: a component is layer 1.
const WASM_MAGIC: &[u8; 4] = b"\0asm";
const COMPONENT_LAYER: [u8; 2] = [0x01, 0x00];

/// Refuses what is not a component before the compiler sees it.
pub(crate) fn check_header(bytes: &[u8]) -> Result<()> {
    let Some((magic, rest)) = bytes.split_first_chunk::<4>() else {
        return Err(Error::NotWasm);
    };
    if magic != WASM_MAGIC {
        return Err(Error::NotWasm);
    }
    match rest.get(2..4) {
        Some(layer) if layer == COMPONENT_LAYER => Ok(()),
        _ => Err(Error::NotAComponent),
    }
}

/// Checks each import: `fjord:processor/*` at a version this host serves, WASI, nothing else.
pub(crate) fn check_imports(engine: &Engine, component: &Component) -> Result<()> {
    for (name, _) in component.component_type().imports(engine) {
        if let Some(interface) = name.strip_prefix("fjord:processor/") {
            check_version(name, interface)?;
        } else if !name.starts_with("wasi:") {
            return Err(Error::UnknownImport {
                import: name.to_owned(),
            });
        }
    }
    Ok(())
}

/// A 0.x package is compatible within its minor version (semver for 0.x, as wasmtime's
/// linker matches names).
fn check_version(name: &str, interface: &str) -> Result<()> {
    let unsupported = || Error::UnsupportedWorld {
        import: name.to_owned(),
        served: SERVED_VERSION,
    };
    let version = interface
        .split_once('@')
        .map(|(_, version)| version)
        .ok_or_else(unsupported)?;
    let major_minor = |version: &str| -> Option<(u64, u64)> {
        let mut parts = version.split(['.', '-', '+']);
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    };
    match (major_minor(version), major_minor(SERVED_VERSION)) {
        (Some(wanted), Some(served)) if wanted == served => Ok(()),
        _ => Err(unsupported()),
    }
}

#[cfg(test)]
mod tests {
    use super::{check_header, check_version};
    use crate::error::Error;

    #[test]
    fn headers_tell_components_from_modules_and_junk() {
        assert!(check_header(b"\0asm\x0d\x00\x01\x00rest").is_ok());
        assert!(matches!(
            check_header(b"\0asm\x01\x00\x00\x00"),
            Err(Error::NotAComponent)
        ));
        assert!(matches!(check_header(b"\0asm"), Err(Error::NotAComponent)));
        assert!(matches!(
            check_header(b"\x7fELF\x02\x01"),
            Err(Error::NotWasm)
        ));
        assert!(matches!(check_header(b""), Err(Error::NotWasm)));
    }

    #[test]
    fn versions_are_served_within_their_minor() {
        assert!(check_version("fjord:processor/state@0.1.0", "state@0.1.0").is_ok());
        assert!(check_version("fjord:processor/state@0.1.7", "state@0.1.7").is_ok());
        let refused =
            check_version("fjord:processor/state@0.2.0", "state@0.2.0").expect_err("newer");
        assert_eq!(
            refused.to_string(),
            "the component was built for `fjord:processor/state@0.2.0`, which this broker does not serve: \
             it serves fjord:processor@0.1.0; upgrade the broker or build the processor with an older SDK"
        );
        assert!(check_version("fjord:processor/state", "state").is_err());
        assert!(check_version("fjord:processor/state@1.0.0", "state@1.0.0").is_err());
    }
}
