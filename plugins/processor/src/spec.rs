//! What a deployment says about a processor, and the names derived from it.

use std::time::Duration;

use crate::limits::ProcessorLimits;

/// Where a processor starts reading an input partition it has no position for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartFrom {
    /// The partition's log start offset.
    Earliest,
    /// The partition's end at the time the task starts.
    Latest,
    /// The first record at or after this time (the end when there is none).
    Timestamp { timestamp_ms: i64 },
}

/// What happens to a record the processor fails (an error it returned, or a trap it
/// caused).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorPolicy {
    /// The task stops at the record, reports the error and waits to be resumed or
    /// redeployed; nothing of the failing batch is committed.
    Stop,
    /// The record is dropped (and counted).
    Skip,
    /// The record goes, unchanged, to this topic with the error in `fjord.error.*` headers.
    DeadLetter { topic: String },
}

/// A processor as deployed (its JSON is the admin API's and the deployment store's).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessorSpec {
    pub name: String,
    pub input: String,
    /// The first is the default output.
    pub outputs: Vec<String>,
    /// `--config key=value`, given to the processor's `init`.
    pub settings: Vec<(String, String)>,
    pub start_from: StartFrom,
    pub error_policy: ErrorPolicy,
    /// How long a task gathers batches into one transaction; zero commits every batch.
    #[serde(rename = "commit_interval_ms", with = "duration_ms")]
    pub commit_interval: Duration,
    pub limits: ProcessorLimits,
}

/// The default commit interval: every batch commits at once, so outputs are visible to
/// `read_committed` consumers a batch after their input (batches grow under load, so
/// commits stay few then).
pub const COMMIT_INTERVAL_DEFAULT: Duration = Duration::ZERO;

impl ProcessorSpec {
    /// The consumer group holding the processor's input positions (`fjord group describe`
    /// shows its lag).
    pub fn group_id(&self) -> String {
        format!("fjord-processor-{}", self.name)
    }

    /// The transactional id of the task for `partition`.
    pub fn transactional_id(&self, partition: i32) -> String {
        format!("fjord-processor-{}-{partition}", self.name)
    }

    /// The compacted topic keeping the state store, one partition per input partition.
    pub fn changelog_topic(&self) -> String {
        format!("fjord-processor-{}-changelog", self.name)
    }

    /// The output a record without a topic goes to.
    pub fn default_output(&self) -> &str {
        self.outputs.first().map_or("", String::as_str)
    }
}

/// A duration as whole milliseconds in JSON.
mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        duration: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}
