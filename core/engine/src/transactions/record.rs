//! `__transaction_state` records, in Kafka's layout (`TransactionLogKey` v0,
//! `TransactionLogValue` v0) so Kafka tooling can read them:
//!
//! - key: version (0), transactional id;
//! - value: version (0), producer id, producer epoch, timeout ms, state id, partitions
//!   (null when none: `[topic, [partition]]`), last update ms, start ms. A null value (a
//!   tombstone) forgets the id.
//!
//! Records are decoded defensively: unknown versions and malformed records are skipped with
//! a warning, never trusted.

use std::collections::{BTreeMap, BTreeSet};

use fjord_partition::{PartitionIndex, ProducerEpoch, ProducerId};

use super::state::{TransactionMetadata, TransactionState};
use crate::groups::offsets::Reader;

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;

/// The record key for `transactional_id`.
pub(crate) fn encode_key(transactional_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(4 + transactional_id.len());
    key.extend_from_slice(&KEY_VERSION.to_be_bytes());
    put_string(&mut key, transactional_id);
    key
}

/// The record value for `metadata`.
pub(crate) fn encode_value(metadata: &TransactionMetadata) -> Vec<u8> {
    let mut value = Vec::new();
    value.extend_from_slice(&VALUE_VERSION.to_be_bytes());
    value.extend_from_slice(&metadata.producer_id.0.to_be_bytes());
    value.extend_from_slice(&metadata.producer_epoch.0.to_be_bytes());
    value.extend_from_slice(&metadata.timeout_ms.to_be_bytes());
    value.push(metadata.state.id() as u8);
    if metadata.partitions.is_empty() {
        value.extend_from_slice(&(-1i32).to_be_bytes());
    } else {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in &metadata.partitions {
            by_topic.entry(topic).or_default().push(partition.0);
        }
        value.extend_from_slice(&(by_topic.len() as i32).to_be_bytes());
        for (topic, partitions) in by_topic {
            put_string(&mut value, topic);
            value.extend_from_slice(&(partitions.len() as i32).to_be_bytes());
            for partition in partitions {
                value.extend_from_slice(&partition.to_be_bytes());
            }
        }
    }
    value.extend_from_slice(&metadata.last_update_ms.to_be_bytes());
    value.extend_from_slice(&metadata.start_ms.to_be_bytes());
    value
}

/// A record decoded: the id and its state, or `None` for a tombstone. `None` overall when
/// the record is not one this version reads.
pub(crate) fn decode(
    key: &[u8],
    value: Option<&[u8]>,
) -> Option<(String, Option<TransactionMetadata>)> {
    let mut key = Reader(key);
    if key.i16()? != KEY_VERSION {
        return None;
    }
    let transactional_id = key.string()??;
    let Some(value) = value else {
        return Some((transactional_id, None));
    };
    let mut value = Reader(value);
    if value.i16()? != VALUE_VERSION {
        return None;
    }
    let producer_id = ProducerId(value.i64()?);
    let producer_epoch = ProducerEpoch(value.i16()?);
    let timeout_ms = value.i32()?;
    let state = TransactionState::from_id(value.i8()?)?;
    let mut partitions = BTreeSet::new();
    let topics = value.i32()?;
    for _ in 0..topics.max(0) {
        let topic = value.string()??;
        let count = value.i32()?;
        for _ in 0..count.max(0) {
            partitions.insert((topic.clone(), PartitionIndex(value.i32()?)));
        }
    }
    let last_update_ms = value.i64()?;
    let start_ms = value.i64()?;
    let metadata = TransactionMetadata {
        transactional_id: transactional_id.clone(),
        producer_id,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        start_ms,
        last_update_ms,
    };
    Some((transactional_id, Some(metadata)))
}

fn put_string(out: &mut Vec<u8>, value: &str) {
    let bytes = &value.as_bytes()[..value.len().min(i16::MAX as usize)];
    out.extend_from_slice(&(bytes.len() as i16).to_be_bytes());
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_bad_ones_are_skipped() {
        let metadata = TransactionMetadata {
            transactional_id: "orders-tx".into(),
            producer_id: ProducerId(4000),
            producer_epoch: ProducerEpoch(3),
            timeout_ms: 60_000,
            state: TransactionState::Ongoing,
            partitions: BTreeSet::from([
                ("a".to_string(), PartitionIndex(0)),
                ("a".to_string(), PartitionIndex(2)),
                ("b".to_string(), PartitionIndex(1)),
            ]),
            start_ms: 100,
            last_update_ms: 150,
        };
        let key = encode_key("orders-tx");
        let value = encode_value(&metadata);
        assert_eq!(
            decode(&key, Some(&value)),
            Some(("orders-tx".to_string(), Some(metadata.clone())))
        );
        assert_eq!(decode(&key, None), Some(("orders-tx".to_string(), None)));
        let empty = TransactionMetadata {
            partitions: BTreeSet::new(),
            state: TransactionState::Empty,
            ..metadata
        };
        assert_eq!(
            decode(&key, Some(&encode_value(&empty))).and_then(|(_, m)| m),
            Some(empty)
        );
        for cut in 0..value.len() {
            assert_eq!(decode(&key, Some(&value[..cut])), None, "cut at {cut}");
        }
        assert_eq!(
            decode(&[0, 1, 0, 1, b'x'], None),
            None,
            "another key version"
        );
    }
}
