//! Where a batch's outputs go: each checked against the processor's outputs, given a
//! partition (Kafka's default partitioner when the processor names none), and grouped per
//! partition for the transaction's appends. Failed records for the dead-letter topic too.

use std::collections::BTreeMap;

use fjord_engine::{Engine, PartitionIndex};
use fjord_record::NewRecord;

use crate::spec::ProcessorSpec;
use crate::transform::{Header, InputRecord, OutputRecord};

/// An output the processor may not write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutputError {
    #[error("output to topic `{topic}`, which is not among the processor's outputs")]
    UnknownTopic { topic: String },
    #[error("output to partition {partition} of `{topic}`, which has {partition_count}")]
    UnknownPartition {
        topic: String,
        partition: i32,
        partition_count: i32,
    },
}

/// Records to append, per output partition, in the order the processor returned them.
#[derive(Debug, Default)]
pub(crate) struct Routed {
    pub(crate) partitions: BTreeMap<(String, PartitionIndex), Vec<OwnedRecord>>,
    pub(crate) count: usize,
}

/// A record to append, owning its bytes.
#[derive(Debug, Clone)]
pub(crate) struct OwnedRecord {
    pub(crate) timestamp_ms: i64,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl OwnedRecord {
    /// Key, value and headers, in bytes.
    pub(crate) fn size_bytes(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(key, value)| key.len() + value.as_ref().map_or(0, Vec::len))
            .sum();
        self.key.as_ref().map_or(0, Vec::len) + self.value.as_ref().map_or(0, Vec::len) + headers
    }

    /// The records' headers borrowed, from which [`NewRecords::records`] lends the engine's
    /// `NewRecord`s.
    pub(crate) fn new_records(records: &[OwnedRecord]) -> NewRecords<'_> {
        let headers = records
            .iter()
            .map(|record| {
                record
                    .headers
                    .iter()
                    .map(|(key, value)| (key.as_slice(), value.as_deref()))
                    .collect()
            })
            .collect();
        NewRecords { records, headers }
    }
}

/// Owned records seen as the engine's `NewRecord`s.
#[derive(Debug)]
pub(crate) struct NewRecords<'a> {
    records: &'a [OwnedRecord],
    #[allow(clippy::type_complexity)]
    headers: Vec<Vec<(&'a [u8], Option<&'a [u8]>)>>,
}

impl NewRecords<'_> {
    pub(crate) fn records(&self) -> Vec<NewRecord<'_>> {
        self.records
            .iter()
            .zip(&self.headers)
            .map(|(record, headers)| NewRecord {
                timestamp_ms: record.timestamp_ms,
                key: record.key.as_deref(),
                value: record.value.as_deref(),
                headers,
            })
            .collect()
    }
}

impl Routed {
    /// Adds `outputs`; an invalid one is returned as an error and left out, the rest kept.
    pub(crate) fn add(
        &mut self,
        engine: &Engine,
        spec: &ProcessorSpec,
        outputs: Vec<OutputRecord>,
        now_ms: i64,
    ) -> Vec<OutputError> {
        let mut errors = Vec::new();
        for output in outputs {
            match route(engine, spec, &output) {
                Ok(destination) => {
                    let record = OwnedRecord {
                        timestamp_ms: output.timestamp_ms.unwrap_or(now_ms),
                        key: output.key,
                        value: output.value,
                        headers: output
                            .headers
                            .into_iter()
                            .map(|header| (header.key.into_bytes(), header.value))
                            .collect(),
                    };
                    self.partitions.entry(destination).or_default().push(record);
                    self.count += 1;
                }
                Err(error) => errors.push(error),
            }
        }
        errors
    }

    /// Adds a failed input record for the dead-letter topic, its partition chosen by key.
    pub(crate) fn add_dead_letter(
        &mut self,
        engine: &Engine,
        spec: &ProcessorSpec,
        topic: &str,
        record: &InputRecord,
        message: &str,
    ) -> Result<(), OutputError> {
        let found = engine
            .topic(topic)
            .ok_or_else(|| OutputError::UnknownTopic {
                topic: topic.to_owned(),
            })?;
        let partition = engine.partition_for(&found, record.key.as_deref(), record.size_bytes());
        let mut headers: Vec<(Vec<u8>, Option<Vec<u8>>)> = record
            .headers
            .iter()
            .map(|Header { key, value }| (key.clone().into_bytes(), value.clone()))
            .collect();
        let error_headers = [
            ("fjord.error.message", message.to_owned()),
            ("fjord.error.processor", spec.name.clone()),
            ("fjord.error.topic", spec.input.clone()),
            ("fjord.error.partition", record.partition.to_string()),
            ("fjord.error.offset", record.offset.to_string()),
        ];
        headers.extend(
            error_headers
                .into_iter()
                .map(|(key, value)| (key.as_bytes().to_vec(), Some(value.into_bytes()))),
        );
        let owned = OwnedRecord {
            timestamp_ms: record.timestamp_ms,
            key: record.key.clone(),
            value: record.value.clone(),
            headers,
        };
        self.partitions
            .entry((topic.to_owned(), partition))
            .or_default()
            .push(owned);
        self.count += 1;
        Ok(())
    }
}

fn route(
    engine: &Engine,
    spec: &ProcessorSpec,
    output: &OutputRecord,
) -> Result<(String, PartitionIndex), OutputError> {
    let topic = match &output.topic {
        None => spec.default_output(),
        Some(topic) if spec.outputs.iter().any(|allowed| allowed == topic) => topic.as_str(),
        Some(topic) => {
            return Err(OutputError::UnknownTopic {
                topic: topic.clone(),
            });
        }
    };
    let found = engine
        .topic(topic)
        .ok_or_else(|| OutputError::UnknownTopic {
            topic: topic.to_owned(),
        })?;
    let partition_count = found.partition_count();
    let partition = match output.partition {
        Some(partition) if (0..partition_count).contains(&partition) => PartitionIndex(partition),
        Some(partition) => {
            return Err(OutputError::UnknownPartition {
                topic: topic.to_owned(),
                partition,
                partition_count,
            });
        }
        None => engine.partition_for(&found, output.key.as_deref(), output.size_bytes()),
    };
    Ok((topic.to_owned(), partition))
}
