//! `fjord processor new NAME`: a processor project that passes its own test at once and
//! builds for `wasm32-wasip2`. The SDK comes with it (`fjord-sdk/`, the sources this binary
//! was built with), so the project builds without anything but crates.io.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, ensure};

/// The SDK's sources, as this binary was built with them.
const SDK_FILES: &[(&str, &str)] = &[
    ("src/lib.rs", include_str!("../../../../sdk/src/lib.rs")),
    (
        "src/context.rs",
        include_str!("../../../../sdk/src/context.rs"),
    ),
    ("src/guest.rs", include_str!("../../../../sdk/src/guest.rs")),
    (
        "src/processor.rs",
        include_str!("../../../../sdk/src/processor.rs"),
    ),
    (
        "src/record.rs",
        include_str!("../../../../sdk/src/record.rs"),
    ),
    (
        "src/shapes.rs",
        include_str!("../../../../sdk/src/shapes.rs"),
    ),
    (
        "src/testing.rs",
        include_str!("../../../../sdk/src/testing.rs"),
    ),
    (
        "wit/processor.wit",
        include_str!("../../../../sdk/wit/processor.wit"),
    ),
    ("README.md", include_str!("../../../../sdk/README.md")),
];

const SDK_MANIFEST: &str = r#"[package]
name = "fjord-sdk"
description = "Write Fjord stream processors in Rust: build them for wasm32-wasip2, test them natively"
version = "0.1.0"
edition = "2024"
rust-version = "1.95"
license = "Apache-2.0"
publish = false

[target.'cfg(target_arch = "wasm32")'.dependencies]
wit-bindgen = { version = "0.63", default-features = false, features = ["macros", "realloc", "std"] }
"#;

const PROCESSOR: &str = r#"//! A Fjord processor: upper-cases every record's value (a value that is not UTF-8 fails,
//! and the deployment's `--on-error` decides). Change it to what you need; `cargo test`
//! runs it natively.

use fjord_sdk::{Config, Context, Error, Processor, Record};

pub struct Processor_;

impl Processor for Processor_ {
    fn init(config: &Config) -> Result<Self, String> {
        let _ = config;
        Ok(Processor_)
    }

    fn process(&mut self, record: &Record, context: &mut Context<'_>) -> Result<(), Error> {
        let text = record.value_str().ok_or_else(|| Error::new("the value is not UTF-8"))?;
        context.emit(record.forward().with_value(text.to_uppercase()));
        Ok(())
    }
}

fjord_sdk::export_processor!(Processor_);

#[cfg(test)]
mod tests {
    use fjord_sdk::testing::TestRunner;

    use super::Processor_;

    #[test]
    fn upper_cases_values_and_fails_what_is_not_text() {
        let mut runner = TestRunner::<Processor_>::new(&[]).expect("no settings needed");
        let run = runner.send(Some("k"), Some("hello"), 1_000);
        assert_eq!(run.outputs[0].value_str(), Some("HELLO"));
        let binary = runner.record(None, Some(&[0xff]), 2_000);
        assert_eq!(runner.process(vec![binary]).failures.len(), 1);
    }
}
"#;

/// Writes the project `name` into `directory/name`.
pub(crate) fn new_project(directory: &Path, name: &str) -> anyhow::Result<PathBuf> {
    ensure!(
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "a processor name has ASCII letters, digits, '-' and '_' only"
    );
    let root = directory.join(name);
    ensure!(!root.exists(), "{} exists already", root.display());
    let type_name = pascal_case(name);
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
         # A component for wasm32-wasip2, and a library for the native tests.\n\
         [lib]\ncrate-type = [\"cdylib\", \"rlib\"]\n\n[dependencies]\nfjord-sdk = {{ path = \"fjord-sdk\" }}\n\n\
         # A project of its own, even inside another workspace.\n[workspace]\n\n\
         [profile.release]\nstrip = true\n"
    );
    let readme = format!(
        "# {name}\n\nA Fjord processor.\n\n```sh\ncargo test                                    # natively\n\
         cargo build --release --target wasm32-wasip2  # target/wasm32-wasip2/release/{file}.wasm\n\
         fjord processor deploy {name} --input IN --output OUT target/wasm32-wasip2/release/{file}.wasm\n```\n",
        file = name.replace('-', "_")
    );
    let files: Vec<(PathBuf, String)> = [
        (PathBuf::from("Cargo.toml"), manifest),
        (
            PathBuf::from("src/lib.rs"),
            PROCESSOR.replace("Processor_", &type_name),
        ),
        (PathBuf::from("README.md"), readme),
        (PathBuf::from(".gitignore"), "/target\n".to_owned()),
        (
            PathBuf::from("fjord-sdk/Cargo.toml"),
            SDK_MANIFEST.to_owned(),
        ),
    ]
    .into_iter()
    .chain(
        SDK_FILES
            .iter()
            .map(|(path, text)| (Path::new("fjord-sdk").join(path), (*text).to_owned())),
    )
    .collect();
    for (path, text) in files {
        let path = root.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(root)
}

/// `fraud-rule` → `FraudRule`.
fn pascal_case(name: &str) -> String {
    let words = name.split(['-', '_']).filter(|word| !word.is_empty());
    let mut out: String = words
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) || out.is_empty() {
        out.insert_str(0, "Processor");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::pascal_case;

    #[test]
    fn names_become_type_names() {
        assert_eq!(pascal_case("fraud-rule"), "FraudRule");
        assert_eq!(pascal_case("my_thing"), "MyThing");
        assert_eq!(pascal_case("9lives"), "Processor9lives");
    }
}
