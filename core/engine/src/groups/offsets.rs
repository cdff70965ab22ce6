//! Committed offsets and group generations, durable in the compacted internal topic
//! `__consumer_offsets`, in Kafka's own record layout so Kafka tooling can read it.
//!
//! - Offset commit: key v1 `(group, topic, partition)`, value v3 `(offset, leader epoch,
//!   metadata, commit timestamp)`; a null value (tombstone) deletes the commit.
//! - Group metadata: key v2 `(group)`, value v3 `(protocol type, generation, protocol,
//!   leader, state timestamp, members)`. Only the generation matters to us: it keeps
//!   generations increasing across restarts. Members are not stored; after a restart every
//!   consumer rejoins, as after a coordinator move in Kafka.
//!
//! Records are decoded defensively: unknown versions and malformed records are skipped with
//! a warning, never trusted.

use std::collections::{BTreeMap, HashMap};

use fjord_record::{BatchBuilder, Compression, ControlType, NewRecord, Records};

use crate::blocking::BlockingPool;
use crate::partition::PartitionStorage;
use crate::{Error, Result};
use fjord_partition::{LeaderEpoch, Offset, PartitionIndex, ProducerEpoch, ProducerId};

/// The internal topic's name, as in Kafka.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Kafka's `offset.metadata.max.bytes`.
pub(crate) const METADATA_BYTES_MAX: usize = crate::limits::OFFSET_METADATA_BYTES_MAX;

const OFFSET_KEY_VERSION: i16 = 1;
const GROUP_KEY_VERSION: i16 = 2;
const OFFSET_VALUE_VERSION: i16 = 3;
const GROUP_VALUE_VERSION: i16 = 3;

/// A committed offset with what came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub offset: Offset,
    /// The leader epoch the consumer last saw, or `LeaderEpoch::UNKNOWN`.
    pub leader_epoch: LeaderEpoch,
    pub metadata: Option<String>,
    pub commit_timestamp_ms: i64,
}

/// One record of the offsets topic, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    Offset {
        group_id: String,
        topic: String,
        partition: PartitionIndex,
        committed: Option<Committed>,
    },
    Group {
        group_id: String,
        generation_id: Option<i32>,
    },
}

impl Entry {
    /// Key and value (`None` = tombstone) in Kafka's layout.
    pub(crate) fn encode(&self, now_ms: i64) -> (Vec<u8>, Option<Vec<u8>>) {
        match self {
            Entry::Offset {
                group_id,
                topic,
                partition,
                committed,
            } => {
                let mut key = Vec::new();
                put_i16(&mut key, OFFSET_KEY_VERSION);
                put_string(&mut key, Some(group_id));
                put_string(&mut key, Some(topic));
                key.extend_from_slice(&partition.0.to_be_bytes());
                let value = committed.as_ref().map(|c| {
                    let mut value = Vec::new();
                    put_i16(&mut value, OFFSET_VALUE_VERSION);
                    value.extend_from_slice(&c.offset.0.to_be_bytes());
                    value.extend_from_slice(&c.leader_epoch.0.to_be_bytes());
                    put_string(&mut value, Some(c.metadata.as_deref().unwrap_or("")));
                    value.extend_from_slice(&c.commit_timestamp_ms.to_be_bytes());
                    value
                });
                (key, value)
            }
            Entry::Group {
                group_id,
                generation_id,
            } => {
                let mut key = Vec::new();
                put_i16(&mut key, GROUP_KEY_VERSION);
                put_string(&mut key, Some(group_id));
                let value = generation_id.map(|generation_id| {
                    let mut value = Vec::new();
                    put_i16(&mut value, GROUP_VALUE_VERSION);
                    put_string(&mut value, Some("consumer"));
                    value.extend_from_slice(&generation_id.to_be_bytes());
                    put_string(&mut value, None);
                    put_string(&mut value, None);
                    value.extend_from_slice(&now_ms.to_be_bytes());
                    value.extend_from_slice(&0i32.to_be_bytes());
                    value
                });
                (key, value)
            }
        }
    }

    /// Decodes a record; `None` for versions and shapes this broker does not know.
    pub(crate) fn decode(key: &[u8], value: Option<&[u8]>) -> Option<Self> {
        let mut key = Reader(key);
        match key.i16()? {
            0 | 1 => {
                let group_id = key.string()??;
                let topic = key.string()??;
                let partition = PartitionIndex(key.i32()?);
                let committed = match value {
                    None => None,
                    Some(value) => Some(decode_offset_value(value)?),
                };
                Some(Entry::Offset {
                    group_id,
                    topic,
                    partition,
                    committed,
                })
            }
            2 => {
                let group_id = key.string()??;
                let generation_id = match value {
                    None => None,
                    Some(value) => {
                        let mut value = Reader(value);
                        let _version = value.i16()?;
                        let _protocol_type = value.string()?;
                        Some(value.i32()?)
                    }
                };
                Some(Entry::Group {
                    group_id,
                    generation_id,
                })
            }
            _ => None,
        }
    }
}

fn decode_offset_value(value: &[u8]) -> Option<Committed> {
    let mut value = Reader(value);
    let version = value.i16()?;
    let offset = Offset(value.i64()?);
    let leader_epoch = LeaderEpoch(if version >= 3 { value.i32()? } else { -1 });
    let metadata = value.string()?;
    let commit_timestamp_ms = value.i64()?;
    Some(Committed {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
    })
}

/// A record of an internal topic that does not parse.
pub(crate) fn invalid_batch(error: fjord_record::Error) -> Error {
    Error::Partition(fjord_partition::Error::InvalidBatch(error))
}

/// Entries as one batch for the offsets partition; with a producer, a batch of its
/// transaction (written on its behalf: no sequence).
pub(crate) fn encode_batch(
    entries: &[Entry],
    producer: Option<(ProducerId, ProducerEpoch)>,
    now_ms: i64,
) -> Result<bytes::Bytes> {
    let mut builder = BatchBuilder::new(Compression::None);
    if let Some((producer_id, producer_epoch)) = producer {
        builder.producer_id = producer_id.0;
        builder.producer_epoch = producer_epoch.0;
        builder.transactional = true;
    }
    let encoded: Vec<_> = entries.iter().map(|e| e.encode(now_ms)).collect();
    for (key, value) in &encoded {
        builder
            .push(&NewRecord {
                timestamp_ms: now_ms,
                key: Some(key),
                value: value.as_deref(),
                headers: &[],
            })
            .map_err(invalid_batch)?;
    }
    let batch = builder.build().map_err(invalid_batch)?;
    Ok(bytes::Bytes::from(batch))
}

/// One record of the offsets partition as loading meets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Loaded {
    /// A plain commit or group record: in force at once.
    Entry(Entry),
    /// A commit in `producer_id`'s transaction: in force at its COMMIT marker.
    Transactional { producer_id: i64, entry: Entry },
    /// The end of `producer_id`'s transaction.
    Marker { producer_id: i64, commit: bool },
}

/// Every record in the offsets partition, oldest first, later ones superseding earlier.
/// Batches read from a file are copied on `pool`.
pub(crate) async fn load(
    partition: &dyn PartitionStorage,
    pool: &BlockingPool,
) -> Result<Vec<Loaded>> {
    let mut entries = Vec::new();
    crate::internal_topic::read_all(partition, pool, OFFSETS_TOPIC, |batch| {
        let producer_id = batch.header.producer_id;
        if let Some(marker) = ControlType::of_batch(batch, fjord_record::DECOMPRESSED_BYTES_MAX)
            .map_err(invalid_batch)?
        {
            let commit = marker == ControlType::Commit;
            entries.push(Loaded::Marker {
                producer_id,
                commit,
            });
            return Ok(());
        }
        let transactional = batch.header.attributes.is_transactional();
        let records = batch
            .decompressed_record_bytes(fjord_record::DECOMPRESSED_BYTES_MAX)
            .map_err(invalid_batch)?;
        for record in Records::new(&records) {
            let record = record.map_err(invalid_batch)?;
            match record.key.and_then(|key| Entry::decode(key, record.value)) {
                Some(entry) if transactional => {
                    entries.push(Loaded::Transactional { producer_id, entry })
                }
                Some(entry) => entries.push(Loaded::Entry(entry)),
                None => tracing::warn!(
                    offset = batch.header.base_offset + i64::from(record.offset_delta),
                    "skipping an unreadable record in {OFFSETS_TOPIC}"
                ),
            }
        }
        Ok(())
    })
    .await?;
    Ok(entries)
}

/// A group's committed offsets, by partition.
pub(crate) type GroupOffsets = BTreeMap<(String, PartitionIndex), Committed>;

/// A group as loading found it.
#[derive(Debug, Default)]
pub(crate) struct Folded {
    pub(crate) generation_id: i32,
    pub(crate) offsets: GroupOffsets,
    /// Offsets of transactions still open, by producer id: the transaction coordinator
    /// commits or aborts them.
    pub(crate) pending: BTreeMap<i64, GroupOffsets>,
}

/// Folds loaded records into each group's committed offsets, last generation and pending
/// transactional offsets. A committed transaction's records count at their own place in the
/// log, not the marker's (as in Kafka, and as compaction keeps the latest record of a key):
/// a plain commit or deletion written after a transactional commit supersedes it, pending
/// or not. An ABORT marker drops the transaction's records.
pub(crate) fn fold(loaded: Vec<Loaded>) -> BTreeMap<String, Folded> {
    type Key = (String, String, PartitionIndex);
    let mut open: BTreeMap<i64, Vec<(usize, Entry)>> = BTreeMap::new();
    let mut in_force = Vec::with_capacity(loaded.len());
    let mut last_plain: HashMap<Key, usize> = HashMap::new();
    for (position, record) in loaded.into_iter().enumerate() {
        match record {
            Loaded::Entry(entry) => {
                if let Entry::Offset {
                    group_id,
                    topic,
                    partition,
                    ..
                } = &entry
                {
                    let key = (group_id.clone(), topic.clone(), *partition);
                    last_plain.insert(key, position);
                }
                in_force.push((position, entry));
            }
            Loaded::Transactional { producer_id, entry } => {
                open.entry(producer_id).or_default().push((position, entry));
            }
            Loaded::Marker {
                producer_id,
                commit,
            } => {
                let entries = open.remove(&producer_id).unwrap_or_default();
                if commit {
                    in_force.extend(entries);
                }
            }
        }
    }
    in_force.sort_by_key(|(position, _)| *position);
    let mut groups = fold_entries(in_force.into_iter().map(|(_, entry)| entry).collect());
    for (producer_id, entries) in open {
        for (position, entry) in entries {
            if let Entry::Offset {
                group_id,
                topic,
                partition,
                committed: Some(committed),
            } = entry
            {
                let key = (group_id, topic, partition);
                if last_plain.get(&key).is_some_and(|plain| *plain > position) {
                    continue;
                }
                let (group_id, topic, partition) = key;
                let group = groups.entry(group_id).or_default();
                let pending = group.pending.entry(producer_id).or_default();
                pending.insert((topic, partition), committed);
            }
        }
    }
    groups
}

fn fold_entries(entries: Vec<Entry>) -> BTreeMap<String, Folded> {
    let mut groups: BTreeMap<String, Folded> = BTreeMap::new();
    for entry in entries {
        match entry {
            Entry::Offset {
                group_id,
                topic,
                partition,
                committed,
            } => {
                let offsets = &mut groups.entry(group_id).or_default().offsets;
                match committed {
                    Some(c) => offsets.insert((topic, partition), c),
                    None => offsets.remove(&(topic, partition)),
                };
            }
            Entry::Group {
                group_id,
                generation_id: Some(generation_id),
            } => groups.entry(group_id).or_default().generation_id = generation_id,
            Entry::Group {
                group_id,
                generation_id: None,
            } => {
                groups.remove(&group_id);
            }
        }
    }
    groups
}

fn put_i16(out: &mut Vec<u8>, value: i16) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_string(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(s) => {
            let bytes = &s.as_bytes()[..s.len().min(i16::MAX as usize)];
            put_i16(out, bytes.len() as i16);
            out.extend_from_slice(bytes);
        }
        None => put_i16(out, -1),
    }
}

/// Reads big-endian fields off a slice; every read is bounds-checked.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    pub(crate) fn i16(&mut self) -> Option<i16> {
        self.take().map(i16::from_be_bytes)
    }

    pub(crate) fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }

    pub(crate) fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_be_bytes)
    }

    pub(crate) fn i8(&mut self) -> Option<i8> {
        self.take().map(i8::from_be_bytes)
    }

    /// `Some(None)` for a null string, `None` when the bytes run out or are not UTF-8.
    pub(crate) fn string(&mut self) -> Option<Option<String>> {
        let length = self.i16()?;
        if length < 0 {
            return Some(None);
        }
        let (bytes, rest) = self.0.split_at_checked(length as usize)?;
        self.0 = rest;
        Some(Some(String::from_utf8(bytes.to_vec()).ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(partition: i32, offset: i64) -> Entry {
        Entry::Offset {
            group_id: "g".into(),
            topic: "t".into(),
            partition: PartitionIndex(partition),
            committed: Some(Committed {
                offset: Offset(offset),
                leader_epoch: LeaderEpoch(-1),
                metadata: None,
                commit_timestamp_ms: 0,
            }),
        }
    }

    #[test]
    fn transactional_commits_count_at_their_own_place_in_the_log() {
        let offset_of = |groups: &BTreeMap<String, Folded>, partition| {
            groups["g"]
                .offsets
                .get(&("t".to_string(), PartitionIndex(partition)))
                .map(|c| c.offset.0)
        };
        let transactional = |producer_id, entry| Loaded::Transactional { producer_id, entry };
        let marker = |producer_id, commit| Loaded::Marker {
            producer_id,
            commit,
        };
        let groups = fold(vec![
            Loaded::Entry(commit(0, 1)),
            transactional(5, commit(0, 10)),
            transactional(5, commit(3, 40)),
            transactional(6, commit(1, 20)),
            transactional(6, commit(4, 50)),
            Loaded::Entry(commit(0, 2)),
            Loaded::Entry(commit(4, 51)),
            marker(5, true),
            transactional(7, commit(2, 30)),
            marker(7, false),
        ]);
        assert_eq!(
            offset_of(&groups, 0),
            Some(2),
            "the plain commit written after the transactional one supersedes it"
        );
        assert_eq!(offset_of(&groups, 3), Some(40), "in force from its marker");
        assert_eq!(offset_of(&groups, 1), None, "still open");
        assert_eq!(offset_of(&groups, 2), None, "aborted");
        assert_eq!(offset_of(&groups, 4), Some(51));
        let pending = &groups["g"].pending;
        assert_eq!(pending.keys().copied().collect::<Vec<_>>(), vec![6]);
        let open: Vec<i64> = pending[&6].values().map(|c| c.offset.0).collect();
        assert_eq!(open, [20], "partition 4's pending commit was superseded");
    }

    #[test]
    fn entries_round_trip_and_fold() {
        let committed = Committed {
            offset: Offset(42),
            leader_epoch: LeaderEpoch(3),
            metadata: Some("m".into()),
            commit_timestamp_ms: 1000,
        };
        let entries = vec![
            Entry::Offset {
                group_id: "g".into(),
                topic: "t".into(),
                partition: PartitionIndex(2),
                committed: Some(committed.clone()),
            },
            Entry::Group {
                group_id: "g".into(),
                generation_id: Some(7),
            },
            Entry::Offset {
                group_id: "g".into(),
                topic: "t".into(),
                partition: PartitionIndex(3),
                committed: None,
            },
        ];
        let decoded: Vec<Entry> = entries
            .iter()
            .map(|e| {
                let (key, value) = e.encode(5);
                Entry::decode(&key, value.as_deref()).expect("decodes")
            })
            .collect();
        assert_eq!(decoded, entries);
        let groups = fold(decoded.into_iter().map(Loaded::Entry).collect());
        assert_eq!(groups["g"].generation_id, 7);
        assert_eq!(
            groups["g"].offsets[&("t".to_string(), PartitionIndex(2))],
            committed
        );
        assert!(Entry::decode(&[0, 9], None).is_none());
        assert!(Entry::decode(&[0, 1, 0, 50, b'x'], None).is_none());
    }
}
