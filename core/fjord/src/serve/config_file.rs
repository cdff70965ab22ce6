//! The `fjord serve --config FILE` settings file (YAML).
//!
//! Keys are the long flag names (`listen`, `data-dir`, `num-partitions`, ...) and `log-config`
//! is a map of Kafka topic config names to values. A value given by flag or environment
//! variable wins over the file, and the file wins over the built-in default, so one file can
//! describe a deployment while a single setting is changed for one run. Unknown keys are an
//! error (a misspelt key silently ignored is a misconfigured broker), reported with the line.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, ensure};

/// A settings file larger than this is refused before it is read whole.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// Everything `fjord serve` can be told in its settings file; each field is optional.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct ServeFile {
    pub(crate) listen: Option<String>,
    pub(crate) advertised_listener: Option<String>,
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) node_id: Option<i32>,
    pub(crate) auto_create_topics: Option<bool>,
    pub(crate) num_partitions: Option<i32>,
    pub(crate) group_initial_rebalance_delay_ms: Option<u64>,
    pub(crate) group_min_session_timeout_ms: Option<i32>,
    pub(crate) metrics_listen: Option<String>,
    pub(crate) max_connections: Option<usize>,
    pub(crate) max_incremental_fetch_session_cache_slots: Option<usize>,
    pub(crate) offsets_retention_minutes: Option<u64>,
    pub(crate) offsets_retention_check_interval_ms: Option<u64>,
    pub(crate) max_connections_per_ip: Option<usize>,
    pub(crate) transaction_max_timeout_ms: Option<i32>,
    pub(crate) transaction_abort_timed_out_transaction_cleanup_interval_ms: Option<u64>,
    pub(crate) transactional_id_expiration_ms: Option<i64>,
    #[serde(default)]
    pub(crate) log_config: BTreeMap<String, Scalar>,
}

/// A `log-config` value as text: YAML may write `retention.ms: 60000` or
/// `cleanup.policy: compact`, and the topic config parser takes both as text.
#[derive(Debug)]
pub(crate) struct Scalar(String);

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl serde::de::Visitor<'_> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a topic config value: a number, true or false, or a string")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Scalar, E> {
        Ok(Scalar(value.to_string()))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Scalar, E> {
        Ok(Scalar(value.to_string()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Scalar, E> {
        Ok(Scalar(value.to_string()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Scalar, E> {
        Ok(Scalar(value.to_string()))
    }

    fn visit_str<E>(self, value: &str) -> Result<Scalar, E> {
        Ok(Scalar(value.to_string()))
    }
}

impl ServeFile {
    /// Reads and parses `path`, refusing files over [`MAX_FILE_BYTES`].
    pub(crate) fn read(path: &Path) -> anyhow::Result<Self> {
        let file = std::fs::File::open(path)
            .with_context(|| format!("cannot open settings file {}", path.display()))?;
        let mut text = String::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .with_context(|| format!("cannot read settings file {}", path.display()))?;
        ensure!(
            text.len() as u64 <= MAX_FILE_BYTES,
            "settings file {} is larger than {MAX_FILE_BYTES} bytes",
            path.display()
        );
        Self::parse(&text).with_context(|| format!("in settings file {}", path.display()))
    }

    pub(crate) fn parse(text: &str) -> anyhow::Result<Self> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        Ok(serde_saphyr::from_str(text)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_parses_and_log_config_values_become_text() -> anyhow::Result<()> {
        let file = ServeFile::parse(
            "listen: 0.0.0.0:9092\n\
             advertised-listener: broker.example:9092\n\
             data-dir: /var/lib/fjord\n\
             node-id: 7\n\
             auto-create-topics: false\n\
             num-partitions: 3\n\
             group-initial-rebalance-delay-ms: 0\n\
             group-min-session-timeout-ms: 1000\n\
             metrics-listen: 'off'\n\
             log-config:\n  retention.ms: 60000\n  cleanup.policy: compact\n  \
             min.cleanable.dirty.ratio: 0.25\n  preallocate: true\n",
        )?;
        assert_eq!(file.listen.as_deref(), Some("0.0.0.0:9092"));
        assert_eq!(file.node_id, Some(7));
        assert_eq!(file.auto_create_topics, Some(false));
        assert_eq!(file.group_initial_rebalance_delay_ms, Some(0));
        assert_eq!(file.metrics_listen.as_deref(), Some("off"));
        let config: Vec<(String, String)> = file
            .log_config
            .iter()
            .map(|(name, value)| (name.clone(), value.to_string()))
            .collect();
        assert_eq!(
            config,
            [
                ("cleanup.policy", "compact"),
                ("min.cleanable.dirty.ratio", "0.25"),
                ("preallocate", "true"),
                ("retention.ms", "60000"),
            ]
            .map(|(name, value)| (name.to_string(), value.to_string()))
        );
        Ok(())
    }

    #[test]
    fn the_example_file_parses() -> anyhow::Result<()> {
        let file = ServeFile::parse(include_str!("../../../../examples/fjord.yaml"))?;
        assert_eq!(file.listen.as_deref(), Some("127.0.0.1:9092"));
        assert_eq!(file.log_config.len(), 3);
        Ok(())
    }

    #[test]
    fn a_log_config_value_that_is_no_scalar_is_an_error_saying_what_is_expected() {
        let error = ServeFile::parse("log-config:\n  retention.ms: [1, 2]\n")
            .err()
            .map(|error| format!("{error:#}"))
            .unwrap_or_default();
        assert!(error.contains("a topic config value"), "{error}");
        assert!(error.contains("line 2"), "{error}");
    }

    #[test]
    fn an_empty_file_sets_nothing() -> anyhow::Result<()> {
        let file = ServeFile::parse("# nothing yet\n")?;
        assert!(file.listen.is_none() && file.log_config.is_empty());
        Ok(())
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_errors_naming_the_line() {
        let error = ServeFile::parse("listen: 127.0.0.1:9092\nnum-partition: 3\n")
            .err()
            .map(|error| format!("{error:#}"))
            .unwrap_or_default();
        assert!(error.contains("num-partition"), "{error}");
        assert!(error.contains('2'), "line missing: {error}");
        let error = ServeFile::parse("node-id: one\n")
            .err()
            .map(|error| format!("{error:#}"))
            .unwrap_or_default();
        assert!(
            error.contains("node-id") || error.contains("line 1"),
            "{error}"
        );
    }
}
