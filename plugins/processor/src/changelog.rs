//! The state store's changelog records: one compacted record per slot, so the topic's
//! compaction keeps exactly the store's latest contents.
//!
//! Key: a kind byte then the slot's key: `s` + state key, `t` + timer key, `w` (the
//! watermark). Value: `None` (a tombstone) when the slot is empty; otherwise a version byte
//! (1) then, for an entry, a flag byte (1: an expiry follows as 8 big-endian bytes) and the
//! value; for a timer or the watermark, 8 big-endian bytes of time.

use crate::state::{Change, Entry};

const ENTRY: u8 = b's';
const TIMER: u8 = b't';
const WATERMARK: u8 = b'w';
const VERSION: u8 = 1;

/// Why a changelog record could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("changelog record at offset {offset} is not one this version writes: {reason}")]
pub struct DecodeError {
    pub offset: i64,
    pub reason: &'static str,
}

/// A change as a changelog record's key and value.
pub(crate) fn encode(change: &Change) -> (Vec<u8>, Option<Vec<u8>>) {
    match change {
        Change::Entry { key, entry } => (prefixed(ENTRY, key), entry.as_ref().map(encode_entry)),
        Change::Timer { key, time_ms } => (prefixed(TIMER, key), time_ms.map(encode_time)),
        Change::Watermark { time_ms } => (vec![WATERMARK], Some(encode_time(*time_ms))),
    }
}

/// A changelog record read back.
pub(crate) fn decode(
    offset: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Result<Change, DecodeError> {
    let error = |reason| DecodeError { offset, reason };
    let (&kind, slot) = key
        .and_then(<[u8]>::split_first)
        .ok_or_else(|| error("no key"))?;
    let body = match value {
        None => None,
        Some([VERSION, body @ ..]) => Some(body),
        Some(_) => return Err(error("unknown version")),
    };
    match kind {
        ENTRY => {
            let entry = body
                .map(|body| decode_entry(body).ok_or_else(|| error("malformed entry")))
                .transpose()?;
            Ok(Change::Entry {
                key: slot.to_vec(),
                entry,
            })
        }
        TIMER => {
            let time_ms = body
                .map(|body| decode_time(body).ok_or_else(|| error("malformed timer")))
                .transpose()?;
            Ok(Change::Timer {
                key: slot.to_vec(),
                time_ms,
            })
        }
        WATERMARK => {
            let time_ms = body
                .and_then(decode_time)
                .ok_or_else(|| error("malformed watermark"))?;
            Ok(Change::Watermark { time_ms })
        }
        _ => Err(error("unknown kind")),
    }
}

fn prefixed(kind: u8, key: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(1 + key.len());
    bytes.push(kind);
    bytes.extend_from_slice(key);
    bytes
}

fn encode_entry(entry: &Entry) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(10 + entry.value.len());
    bytes.push(VERSION);
    match entry.expires_at_ms {
        Some(at) => {
            bytes.push(1);
            bytes.extend_from_slice(&at.to_be_bytes());
        }
        None => bytes.push(0),
    }
    bytes.extend_from_slice(&entry.value);
    bytes
}

fn decode_entry(body: &[u8]) -> Option<Entry> {
    match body.split_first()? {
        (0, value) => Some(Entry {
            value: value.to_vec(),
            expires_at_ms: None,
        }),
        (1, rest) => {
            let (at, value) = rest.split_first_chunk::<8>()?;
            Some(Entry {
                value: value.to_vec(),
                expires_at_ms: Some(i64::from_be_bytes(*at)),
            })
        }
        _ => None,
    }
}

fn encode_time(time_ms: i64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(9);
    bytes.push(VERSION);
    bytes.extend_from_slice(&time_ms.to_be_bytes());
    bytes
}

fn decode_time(body: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(body.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::{decode, encode};
    use crate::state::{Change, Entry};

    #[test]
    fn every_change_round_trips() {
        let changes = [
            Change::Entry {
                key: b"k".to_vec(),
                entry: Some(Entry {
                    value: b"v".to_vec(),
                    expires_at_ms: None,
                }),
            },
            Change::Entry {
                key: b"k".to_vec(),
                entry: Some(Entry {
                    value: Vec::new(),
                    expires_at_ms: Some(-5),
                }),
            },
            Change::Entry {
                key: Vec::new(),
                entry: None,
            },
            Change::Timer {
                key: b"t".to_vec(),
                time_ms: Some(i64::MIN),
            },
            Change::Timer {
                key: b"t".to_vec(),
                time_ms: None,
            },
            Change::Watermark {
                time_ms: 1_767_225_600_000,
            },
        ];
        for change in changes {
            let (key, value) = encode(&change);
            assert_eq!(decode(0, Some(&key), value.as_deref()), Ok(change));
        }
    }

    #[test]
    fn foreign_records_are_refused_with_their_offset() {
        assert_eq!(
            decode(7, None, None).map_err(|error| error.to_string()),
            Err("changelog record at offset 7 is not one this version writes: no key".to_owned())
        );
        assert!(decode(0, Some(b"x"), Some(&[1])).is_err());
        assert!(decode(0, Some(b"s"), Some(&[2, 0])).is_err());
        assert!(decode(0, Some(b"s"), Some(&[1, 1, 0])).is_err());
        assert!(decode(0, Some(b"w"), None).is_err());
    }
}
