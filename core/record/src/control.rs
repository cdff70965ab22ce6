//! Control records: the transaction markers (COMMIT, ABORT) a transaction coordinator writes
//! into each partition of a transaction, one record in a control batch.
//!
//! Kafka's layout: the key is `version: i16, type: i16` (type 0 is ABORT, 1 is COMMIT); the
//! value is `version: i16, coordinator_epoch: i32`. A key of another type is not a
//! transaction marker (Kafka has others, for KRaft) and is left alone.

use crate::{Batch, BatchBuilder, Compression, NewRecord, Records, Result};

/// What a transaction marker ends its transaction with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlType {
    Abort,
    Commit,
}

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;

impl ControlType {
    /// The marker type a control record's key names, or `None` for a key that is not a
    /// transaction marker.
    pub fn from_key(key: &[u8]) -> Option<Self> {
        let version = i16::from_be_bytes(key.get(0..2)?.try_into().ok()?);
        let kind = i16::from_be_bytes(key.get(2..4)?.try_into().ok()?);
        match (version >= 0, kind) {
            (true, 0) => Some(Self::Abort),
            (true, 1) => Some(Self::Commit),
            _ => None,
        }
    }

    /// The control record's key for this marker.
    pub fn key(self) -> [u8; 4] {
        let kind: i16 = match self {
            Self::Abort => 0,
            Self::Commit => 1,
        };
        let mut key = [0; 4];
        key[..2].copy_from_slice(&KEY_VERSION.to_be_bytes());
        key[2..].copy_from_slice(&kind.to_be_bytes());
        key
    }

    /// The control record's value: the coordinator epoch that wrote the marker.
    pub fn value(coordinator_epoch: i32) -> [u8; 6] {
        let mut value = [0; 6];
        value[..2].copy_from_slice(&VALUE_VERSION.to_be_bytes());
        value[2..].copy_from_slice(&coordinator_epoch.to_be_bytes());
        value
    }

    /// A control batch holding this marker for `producer_id` at `producer_epoch`, written by
    /// a coordinator at `coordinator_epoch`: what a transaction coordinator appends to each
    /// partition of a transaction to end it.
    pub fn marker_batch(
        self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        timestamp_ms: i64,
    ) -> Result<Vec<u8>> {
        let mut builder = BatchBuilder::new(Compression::None);
        builder.producer_id = producer_id;
        builder.producer_epoch = producer_epoch;
        builder.transactional = true;
        builder.control = true;
        let (key, value) = (self.key(), Self::value(coordinator_epoch));
        builder.push(&NewRecord {
            timestamp_ms,
            key: Some(&key),
            value: Some(&value),
            headers: &[],
        })?;
        builder.build()
    }

    /// The marker a control batch holds, or `None` if `batch` is not a control batch or its
    /// record is not a transaction marker. Decompresses at most `limit_bytes`.
    pub fn of_batch(batch: &Batch<'_>, limit_bytes: usize) -> Result<Option<Self>> {
        if !batch.header.attributes.is_control() {
            return Ok(None);
        }
        let records = batch.decompressed_record_bytes(limit_bytes)?;
        let first = Records::new(&records).next().transpose()?;
        Ok(first.and_then(|record| record.key).and_then(Self::from_key))
    }
}

#[cfg(test)]
mod tests {
    use super::ControlType;
    use crate::{BatchBuilder, Compression, NewRecord};

    /// The marker's record in a batch without the control bit: data, not a marker.
    fn not_a_marker(kind: ControlType) -> Vec<u8> {
        let mut builder = BatchBuilder::new(Compression::None);
        let (key, value) = (kind.key(), ControlType::value(3));
        builder
            .push(&NewRecord {
                timestamp_ms: 1,
                key: Some(&key),
                value: Some(&value),
                headers: &[],
            })
            .expect("one record");
        builder.build().expect("builds")
    }

    #[test]
    fn markers_are_read_back_from_their_batch() {
        for kind in [ControlType::Abort, ControlType::Commit] {
            assert_eq!(ControlType::from_key(&kind.key()), Some(kind));
            let bytes = kind.marker_batch(7, 1, 3, 1).expect("builds");
            let batch = crate::batches(&bytes).next().expect("one").expect("valid");
            assert_eq!(ControlType::of_batch(&batch, 1 << 20), Ok(Some(kind)));
            let bytes = not_a_marker(kind);
            let data = crate::batches(&bytes).next().expect("one").expect("valid");
            assert_eq!(ControlType::of_batch(&data, 1 << 20), Ok(None));
        }
        assert_eq!(ControlType::from_key(&[0, 0, 0, 5]), None);
        assert_eq!(ControlType::from_key(&[0, 0]), None);
        assert_eq!(ControlType::from_key(&[0xff, 0xff, 0, 1]), None);
    }
}
