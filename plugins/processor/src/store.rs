//! Deployments on disk, so they survive a restart: `<directory>/<name>/spec.json` and the
//! module it names, `module-<crc32c>-<bytes>.wasm`. The module is written first and the spec
//! last, each to a temporary file, synced and renamed, so a crash leaves either the old
//! deployment whole or the new one.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::spec::ProcessorSpec;

/// What `spec.json` holds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Stored {
    pub(crate) spec: ProcessorSpec,
    pub(crate) paused: bool,
    pub(crate) module_file: String,
    pub(crate) module_crc32c: u32,
    pub(crate) module_bytes: usize,
    pub(crate) deployed_at_ms: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct Store {
    directory: PathBuf,
}

impl Store {
    pub(crate) fn new(directory: PathBuf) -> Store {
        Store { directory }
    }

    /// Every deployment with its module. One that cannot be read is reported and skipped.
    pub(crate) fn load_all(&self) -> Result<Vec<(Stored, Vec<u8>)>> {
        let entries = match fs::read_dir(&self.directory) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(Error::Io {
                    path: self.directory.clone(),
                    source,
                });
            }
        };
        let mut found = Vec::new();
        for entry in entries.flatten() {
            match self.load(&entry.path()) {
                Ok(deployment) => found.push(deployment),
                Err(error) => {
                    tracing::error!(path = %entry.path().display(), %error, "a stored processor cannot be loaded")
                }
            }
        }
        found.sort_by(|(a, _), (b, _)| a.spec.name.cmp(&b.spec.name));
        Ok(found)
    }

    fn load(&self, directory: &Path) -> Result<(Stored, Vec<u8>)> {
        let spec_path = directory.join("spec.json");
        let text = fs::read(&spec_path).map_err(|source| Error::Io {
            path: spec_path.clone(),
            source,
        })?;
        let stored: Stored = serde_json::from_slice(&text).map_err(|error| Error::Corrupt {
            path: spec_path.clone(),
            reason: error.to_string(),
        })?;
        let module_path = directory.join(&stored.module_file);
        let module = fs::read(&module_path).map_err(|source| Error::Io {
            path: module_path.clone(),
            source,
        })?;
        if module.len() != stored.module_bytes || crc32c::crc32c(&module) != stored.module_crc32c {
            return Err(Error::Corrupt {
                path: module_path,
                reason: "length or CRC-32C differs from spec.json".to_owned(),
            });
        }
        Ok((stored, module))
    }

    /// Writes a deployment (module, then spec), then removes the modules it replaced.
    pub(crate) fn save(&self, stored: &Stored, module: Option<&[u8]>) -> Result<()> {
        let directory = self.directory.join(&stored.spec.name);
        fs::create_dir_all(&directory).map_err(|source| Error::Io {
            path: directory.clone(),
            source,
        })?;
        if let Some(module) = module {
            write_atomically(&directory.join(&stored.module_file), module)?;
        }
        let spec = serde_json::to_vec_pretty(stored).map_err(|error| Error::Corrupt {
            path: directory.join("spec.json"),
            reason: error.to_string(),
        })?;
        write_atomically(&directory.join("spec.json"), &spec)?;
        let stale = fs::read_dir(&directory).map_err(|source| Error::Io {
            path: directory.clone(),
            source,
        })?;
        for entry in stale.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("module-") && name != stored.module_file {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    pub(crate) fn remove(&self, name: &str) -> Result<()> {
        let directory = self.directory.join(name);
        match fs::remove_dir_all(&directory) {
            Ok(()) => sync_directory(&self.directory),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::Io {
                path: directory,
                source,
            }),
        }
    }
}

/// The module file name for `module`.
pub(crate) fn module_file(module: &[u8]) -> (String, u32) {
    let crc = crc32c::crc32c(module);
    (format!("module-{crc:08x}-{}.wasm", module.len()), crc)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let temporary = path.with_extension("tmp");
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = fs::File::create(&temporary).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    fs::rename(&temporary, path).map_err(io)?;
    sync_directory(path.parent().unwrap_or(Path::new(".")))
}

fn sync_directory(directory: &Path) -> Result<()> {
    fs::File::open(directory)
        .and_then(|directory| directory.sync_all())
        .map_err(|source| Error::Io {
            path: directory.to_path_buf(),
            source,
        })
}
