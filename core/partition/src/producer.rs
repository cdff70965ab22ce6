//! Idempotent producer state: per producer id, its epoch and its last few batches, so a
//! retried batch is recognised and answered with its original offsets instead of being
//! written twice, and a batch that skips sequence numbers or comes from a fenced epoch is
//! refused.
//!
//! The rules are Kafka's (`ProducerStateManager`): a producer's sequence numbers continue by
//! one per record within an epoch; a new, higher epoch starts at sequence 0; an unknown
//! producer (its state expired or was never seen) is accepted at any sequence.
//!
//! A batch with a producer id but no sequence ([`NO_SEQUENCE`]) is written by a coordinator
//! on the producer's behalf (a transaction's offset commits, as Kafka's coordinator-origin
//! appends): it is held to the epoch, may open the producer's transaction, and is no batch
//! of the producer's sequence. Clients may not send such batches; the engine refuses them.
//!
//! The state is memory; a storage keeps it across restarts as it sees fit: the local log
//! writes [`ProducerStates::encode_snapshot`] when a segment rolls and when it closes, and at
//! open decodes the snapshot and replays the batch headers after it
//! ([`ProducerStates::update`]), so the state after a crash is what the surviving data says.

use std::collections::{BTreeSet, HashMap, VecDeque};

use fjord_record::{BatchHeader, ControlType, NO_PRODUCER_ID, NO_SEQUENCE};

use crate::{Error, Result};

/// Snapshots are written in v2 (v1, without open transactions, is still read).
const SNAPSHOT_HEADER_V1: &str = "fjord-producer-snapshot v1";
const SNAPSHOT_HEADER: &str = "fjord-producer-snapshot v2";
/// An open transaction's first offset in a snapshot line when there is none.
const NO_TRANSACTION: i64 = -1;

/// How many recent batches per producer are kept for duplicate detection. Kafka keeps 5, the
/// most in-flight requests an idempotent producer may have.
const BATCHES_KEPT: usize = 5;

/// Producers tracked per partition; past this the least recently active is forgotten (it is
/// then accepted at any sequence, as after expiry).
pub const PRODUCERS_MAX: usize = 20_000;

/// How long a silent producer's state is kept (Kafka's `producer.id.expiration.ms`).
pub const PRODUCER_EXPIRATION_MS: i64 = 24 * 60 * 60 * 1000;

/// One batch a producer wrote, as remembered for duplicate detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub base_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ProducerEntry {
    producer_epoch: i16,
    /// Oldest first, at most [`BATCHES_KEPT`].
    batches: VecDeque<ProducerBatch>,
    last_timestamp_ms: i64,
    /// The first offset of the producer's open transaction, if one is open: the last stable
    /// offset of the partition cannot pass it until a marker ends the transaction.
    transaction_first_offset: Option<i64>,
}

/// A transaction a marker ended, for the aborted-transactions index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTransaction {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The marker's offset.
    pub last_offset: i64,
    pub aborted: bool,
}

/// What checking a batch against the producer state decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Not an idempotent batch, or the next one in sequence: write it.
    Append,
    /// Already written: answer with where it went.
    Duplicate(ProducerBatch),
}

/// The idempotent producers of one partition: each one's epoch and last few batches.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
    /// Each open transaction as (first offset, producer id), oldest first: the last stable
    /// offset is read off its first element on every read_committed fetch, in O(log n).
    /// Always exactly the entries' `transaction_first_offset`s.
    open: BTreeSet<(i64, i64)>,
}

impl ProducerStates {
    /// Checks one incoming batch (offsets not yet assigned) against the state.
    pub fn check(&self, header: &BatchHeader) -> Result<Check> {
        if header.producer_id == NO_PRODUCER_ID {
            return Ok(Check::Append);
        }
        let Some(entry) = self.producers.get(&header.producer_id) else {
            return Ok(Check::Append);
        };
        let producer_id = header.producer_id;
        let first_sequence = header.base_sequence;
        if outside_sequence(header) && header.producer_epoch >= entry.producer_epoch {
            // A transaction marker or a coordinator's batch: no batch of the sequence.
            return Ok(Check::Append);
        }
        if header.producer_epoch < entry.producer_epoch {
            return Err(Error::InvalidProducerEpoch {
                producer_id,
                producer_epoch: header.producer_epoch,
                current_epoch: entry.producer_epoch,
            });
        }
        if header.producer_epoch > entry.producer_epoch {
            if first_sequence != 0 {
                return Err(Error::OutOfOrderSequence {
                    producer_id,
                    first_sequence,
                    expected_sequence: 0,
                });
            }
            return Ok(Check::Append);
        }
        let last_sequence = last_sequence(header);
        if let Some(duplicate) = entry
            .batches
            .iter()
            .find(|b| b.first_sequence == first_sequence && b.last_sequence == last_sequence)
        {
            return Ok(Check::Duplicate(*duplicate));
        }
        let expected_sequence = entry
            .batches
            .back()
            .map_or(0, |b| next_sequence(b.last_sequence));
        if first_sequence != expected_sequence {
            return Err(Error::OutOfOrderSequence {
                producer_id,
                first_sequence,
                expected_sequence,
            });
        }
        Ok(Check::Append)
    }

    /// Records a batch written at its final offsets (appends and recovery replay).
    pub fn update(&mut self, header: &BatchHeader) {
        if header.producer_id == NO_PRODUCER_ID {
            return;
        }
        self.record(header);
        if self.producers.len() > PRODUCERS_MAX {
            self.forget_least_recent();
        }
    }

    /// [`ProducerStates::update`] but for the bound on producers.
    fn record(&mut self, header: &BatchHeader) {
        let entry = self
            .producers
            .entry(header.producer_id)
            .or_insert_with(|| ProducerEntry {
                producer_epoch: header.producer_epoch,
                batches: VecDeque::new(),
                last_timestamp_ms: header.max_timestamp,
                transaction_first_offset: None,
            });
        entry.last_timestamp_ms = entry.last_timestamp_ms.max(header.max_timestamp);
        if header.attributes.is_control() {
            // A marker moves the producer's epoch on (a fenced producer's transaction is
            // ended by a marker of the new epoch) but is no batch of its sequence; ending
            // the transaction is `end_transaction`'s.
            if header.producer_epoch > entry.producer_epoch {
                entry.producer_epoch = header.producer_epoch;
                entry.batches.clear();
            }
            return;
        }
        if header.attributes.is_transactional() && entry.transaction_first_offset.is_none() {
            entry.transaction_first_offset = Some(header.base_offset);
            self.open.insert((header.base_offset, header.producer_id));
        }
        if header.producer_epoch != entry.producer_epoch {
            entry.producer_epoch = header.producer_epoch;
            entry.batches.clear();
        }
        if header.base_sequence == NO_SEQUENCE {
            return; // a coordinator's batch: not in the sequence
        }
        if entry.batches.len() == BATCHES_KEPT {
            entry.batches.pop_front();
        }
        entry.batches.push_back(ProducerBatch {
            first_sequence: header.base_sequence,
            last_sequence: last_sequence(header),
            base_offset: header.base_offset,
            last_offset: header.last_offset(),
        });
    }

    /// Ends the open transaction of the marker's producer (`header` is the marker's, at its
    /// offset); returns it, or `None` if the producer had none open (a marker for an empty
    /// transaction).
    pub fn end_transaction(
        &mut self,
        header: &BatchHeader,
        marker: ControlType,
    ) -> Option<CompletedTransaction> {
        self.update(header);
        let entry = self.producers.get_mut(&header.producer_id)?;
        let first_offset = entry.transaction_first_offset.take()?;
        self.open.remove(&(first_offset, header.producer_id));
        Some(CompletedTransaction {
            producer_id: header.producer_id,
            first_offset,
            last_offset: header.base_offset,
            aborted: marker == ControlType::Abort,
        })
    }

    /// The first offset of the oldest open transaction: the last stable offset may not pass
    /// it (`None`: no transaction is open).
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.open.first().map(|(first_offset, _)| *first_offset)
    }

    /// Rebuilds the index of open transactions from the entries, after a change to many.
    fn reindex_open(&mut self) {
        self.open = self
            .producers
            .iter()
            .filter_map(|(id, e)| e.transaction_first_offset.map(|f| (f, *id)))
            .collect();
    }

    /// Forgets producers silent for longer than [`PRODUCER_EXPIRATION_MS`], but not one with
    /// a transaction open (the coordinator ends it first).
    pub fn expire(&mut self, now_ms: i64) {
        self.producers.retain(|_, e| {
            e.transaction_first_offset.is_some()
                || now_ms.saturating_sub(e.last_timestamp_ms) < PRODUCER_EXPIRATION_MS
        });
    }

    /// Forgets batches, and transactions opened, at or past `offset` (the log was truncated
    /// there).
    pub fn truncate_from(&mut self, offset: i64) {
        for entry in self.producers.values_mut() {
            entry.batches.retain(|b| b.last_offset < offset);
            entry.transaction_first_offset = entry.transaction_first_offset.filter(|f| *f < offset);
        }
        self.producers
            .retain(|_, e| !e.batches.is_empty() || e.transaction_first_offset.is_some());
        self.reindex_open();
    }

    /// Forgets the least recently active producer, one without an open transaction if any.
    fn forget_least_recent(&mut self) {
        if let Some(oldest) = self
            .producers
            .iter()
            .min_by_key(|(_, e)| (e.transaction_first_offset.is_some(), e.last_timestamp_ms))
            .map(|(id, _)| *id)
            && let Some(entry) = self.producers.remove(&oldest)
            && let Some(first_offset) = entry.transaction_first_offset
        {
            self.open.remove(&(first_offset, oldest));
        }
    }

    /// Checks the batches of one append in order, each seeing the ones before it: the
    /// original of a retried batch if the append is one, an error if any batch breaks its
    /// producer's sequence or epoch. The state itself is not changed.
    pub fn check_append<'a>(
        &self,
        headers: impl IntoIterator<Item = &'a BatchHeader>,
    ) -> Result<Option<ProducerBatch>> {
        let mut touched = Self::default();
        for header in headers {
            let producer_id = header.producer_id;
            if producer_id == NO_PRODUCER_ID {
                continue;
            }
            if let (false, Some(entry)) = (
                touched.producers.contains_key(&producer_id),
                self.producers.get(&producer_id),
            ) {
                touched.producers.insert(producer_id, entry.clone());
                if let Some(first_offset) = entry.transaction_first_offset {
                    touched.open.insert((first_offset, producer_id));
                }
            }
            match touched.check(header)? {
                Check::Duplicate(original) => return Ok(Some(original)),
                Check::Append => touched.update(header),
            }
        }
        Ok(None)
    }

    /// Producers remembered.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// The state as text, as of `offset` (the end offset it covers): a header line, the
    /// offset, then one line per producer. The storage adds its own integrity check.
    pub fn encode_snapshot(&self, offset: i64) -> String {
        let mut body = format!("{SNAPSHOT_HEADER}\noffset {offset}\n");
        for (producer_id, entry) in &self.producers {
            body.push_str(&format!(
                "{producer_id} {} {} {}",
                entry.producer_epoch,
                entry.last_timestamp_ms,
                entry.transaction_first_offset.unwrap_or(NO_TRANSACTION)
            ));
            for b in &entry.batches {
                body.push_str(&format!(
                    " {} {} {} {}",
                    b.first_sequence, b.last_sequence, b.base_offset, b.last_offset
                ));
            }
            body.push('\n');
        }
        body
    }

    /// The state and the offset it covers from [`ProducerStates::encode_snapshot`]'s text,
    /// or `None` if it is not a snapshot (every field is checked; nothing is trusted).
    pub fn decode_snapshot(body: &str) -> Option<(Self, i64)> {
        parse_snapshot(body)
    }
}

fn parse_snapshot(body: &str) -> Option<(ProducerStates, i64)> {
    let mut lines = body.lines();
    // v1 lines have no open-transaction field.
    let head_fields = match lines.next()? {
        SNAPSHOT_HEADER => 4,
        SNAPSHOT_HEADER_V1 => 3,
        _ => return None,
    };
    let offset = lines.next()?.strip_prefix("offset ")?.parse().ok()?;
    let mut states = ProducerStates::default();
    for line in lines {
        let numbers: Vec<i64> = line
            .split(' ')
            .map(str::parse)
            .collect::<std::result::Result<_, _>>()
            .ok()?;
        let (head, batches) = numbers.split_at_checked(head_fields)?;
        if batches.len() % 4 != 0 || batches.len() / 4 > BATCHES_KEPT {
            return None;
        }
        let entry = ProducerEntry {
            producer_epoch: i16::try_from(head[1]).ok()?,
            last_timestamp_ms: head[2],
            transaction_first_offset: head.get(3).copied().filter(|f| *f != NO_TRANSACTION),
            batches: batches
                .chunks_exact(4)
                .map(|b| {
                    Some(ProducerBatch {
                        first_sequence: i32::try_from(b[0]).ok()?,
                        last_sequence: i32::try_from(b[1]).ok()?,
                        base_offset: b[2],
                        last_offset: b[3],
                    })
                })
                .collect::<Option<_>>()?,
        };
        states.producers.insert(head[0], entry);
    }
    states.reindex_open();
    Some((states, offset))
}

/// The sequence of a batch's last record (sequences wrap at `i32::MAX`).
/// A transaction marker, or a batch a coordinator wrote for the producer (no sequence):
/// neither continues the producer's sequence.
fn outside_sequence(header: &BatchHeader) -> bool {
    header.attributes.is_control() || header.base_sequence == NO_SEQUENCE
}

fn last_sequence(header: &BatchHeader) -> i32 {
    let last = i64::from(header.base_sequence) + i64::from(header.last_offset_delta);
    if last > i64::from(i32::MAX) {
        (last - i64::from(i32::MAX) - 1) as i32
    } else {
        last as i32
    }
}

fn next_sequence(sequence: i32) -> i32 {
    if sequence == i32::MAX {
        0
    } else {
        sequence + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(producer_id: i64, epoch: i16, sequence: i32, base_offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset,
            batch_length: 0,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: fjord_record::Attributes(0),
            last_offset_delta: 2,
            base_timestamp: 1000,
            max_timestamp: 1000,
            producer_id,
            producer_epoch: epoch,
            base_sequence: sequence,
            records_count: 3,
        }
    }

    #[test]
    fn sequences_continue_duplicates_are_found_and_gaps_refused() {
        let mut states = ProducerStates::default();
        assert_eq!(states.check(&header(7, 0, 0, 0)).ok(), Some(Check::Append));
        states.update(&header(7, 0, 0, 10));
        assert_eq!(states.check(&header(7, 0, 3, 0)).ok(), Some(Check::Append));
        states.update(&header(7, 0, 3, 13));
        match states.check(&header(7, 0, 0, 0)) {
            Ok(Check::Duplicate(b)) => assert_eq!((b.base_offset, b.last_offset), (10, 12)),
            other => panic!("expected a duplicate, got {other:?}"),
        }
        assert!(matches!(
            states.check(&header(7, 0, 9, 0)),
            Err(Error::OutOfOrderSequence {
                expected_sequence: 6,
                ..
            })
        ));
        assert!(matches!(
            states.check(&header(7, -1, 6, 0)),
            Err(Error::InvalidProducerEpoch { .. })
        ));
        assert!(matches!(
            states.check(&header(7, 1, 5, 0)),
            Err(Error::OutOfOrderSequence { .. })
        ));
        assert_eq!(states.check(&header(7, 1, 0, 0)).ok(), Some(Check::Append));
        assert_eq!(states.check(&header(8, 0, 42, 0)).ok(), Some(Check::Append));
    }

    #[test]
    fn snapshot_round_trips_and_truncation_forgets() {
        let mut states = ProducerStates::default();
        for i in 0..7 {
            states.update(&header(7, 2, i * 3, 100 + i64::from(i) * 3));
        }
        states.update(&header(9, 0, 0, 200));
        let snapshot = states.encode_snapshot(203);
        let (read, offset) = ProducerStates::decode_snapshot(&snapshot).expect("decodes");
        assert!(ProducerStates::decode_snapshot(&snapshot.replace(" 2 ", " x ")).is_none());
        assert_eq!((read.clone(), offset), (states, 203));
        let mut read = read;
        read.truncate_from(200);
        assert_eq!(read.producers.len(), 1);
        assert!(matches!(
            read.check(&header(7, 2, 18, 0)),
            Ok(Check::Duplicate(_))
        ));
    }

    #[test]
    fn a_coordinator_batch_opens_the_transaction_outside_the_sequence() {
        let mut states = ProducerStates::default();
        states.update(&transactional(7, 0, 10)); // sequence 0-2
        let mut offsets = transactional(7, NO_SEQUENCE, 13);
        assert_eq!(states.check(&offsets).ok(), Some(Check::Append));
        states.update(&offsets);
        offsets.base_offset = 16;
        assert_eq!(
            states.check(&offsets).ok(),
            Some(Check::Append),
            "twice: no duplicate"
        );
        assert_eq!(
            states.check(&transactional(7, 3, 0)).ok(),
            Some(Check::Append),
            "the client's sequence goes on from its own batches"
        );
        offsets.producer_epoch = -1;
        assert!(matches!(
            states.check(&offsets),
            Err(Error::InvalidProducerEpoch { .. })
        ));
        let mut fresh = ProducerStates::default();
        fresh.update(&transactional(9, NO_SEQUENCE, 40));
        assert_eq!(fresh.first_unstable_offset(), Some(40));
    }

    #[test]
    fn sequence_wraps_at_i32_max() {
        let mut h = header(1, 0, i32::MAX - 1, 0);
        assert_eq!(last_sequence(&h), 0);
        h.base_sequence = 5;
        assert_eq!(last_sequence(&h), 7);
        assert_eq!(next_sequence(i32::MAX), 0);
    }

    fn transactional(producer_id: i64, sequence: i32, base_offset: i64) -> BatchHeader {
        let mut h = header(producer_id, 0, sequence, base_offset);
        h.attributes = fjord_record::Attributes(0).with_transactional(true);
        h
    }

    fn marker(producer_id: i64, epoch: i16, base_offset: i64) -> BatchHeader {
        let mut h = header(producer_id, epoch, -1, base_offset);
        h.attributes = fjord_record::Attributes(0)
            .with_transactional(true)
            .with_control(true);
        h.last_offset_delta = 0;
        h
    }

    #[test]
    fn open_transactions_hold_the_first_unstable_offset_until_their_marker() {
        let mut states = ProducerStates::default();
        states.update(&header(1, 0, 0, 0));
        assert_eq!(states.first_unstable_offset(), None, "idempotent only");
        states.update(&transactional(2, 0, 3));
        states.update(&transactional(3, 0, 6));
        states.update(&transactional(2, 3, 9));
        assert_eq!(states.first_unstable_offset(), Some(3));
        // The marker is no batch of the sequence: the next batch still continues it.
        assert_eq!(states.check(&marker(2, 0, 12)).ok(), Some(Check::Append));
        let ended = states.end_transaction(&marker(2, 0, 12), ControlType::Commit);
        assert_eq!(
            ended,
            Some(CompletedTransaction {
                producer_id: 2,
                first_offset: 3,
                last_offset: 12,
                aborted: false
            })
        );
        assert_eq!(states.first_unstable_offset(), Some(6));
        assert_eq!(
            states.check(&transactional(2, 6, 0)).ok(),
            Some(Check::Append)
        );
        // A marker for a producer with nothing open ends nothing.
        assert_eq!(
            states.end_transaction(&marker(1, 0, 13), ControlType::Abort),
            None
        );
        // A marker of a newer epoch fences the older one and ends its transaction.
        let ended = states.end_transaction(&marker(3, 1, 14), ControlType::Abort);
        assert_eq!(ended.map(|t| (t.first_offset, t.aborted)), Some((6, true)));
        assert!(
            states.check(&transactional(3, 0, 0)).is_err(),
            "epoch 0 is fenced"
        );
        assert_eq!(states.first_unstable_offset(), None);
    }

    #[test]
    fn open_transactions_survive_snapshots_expiry_and_truncation() {
        let mut states = ProducerStates::default();
        states.update(&transactional(2, 0, 3));
        states.update(&transactional(4, 0, 20));
        let snapshot = states.encode_snapshot(30);
        let (read, _) = ProducerStates::decode_snapshot(&snapshot).expect("decodes");
        assert_eq!(read.first_unstable_offset(), Some(3));
        let v1 = "fjord-producer-snapshot v1\noffset 30\n7 0 1000 0 2 10 12\n";
        let (old, offset) = ProducerStates::decode_snapshot(v1).expect("v1 still reads");
        assert_eq!(
            (old.len(), old.first_unstable_offset(), offset),
            (1, None, 30)
        );
        let mut expired = read.clone();
        expired.expire(1000 + PRODUCER_EXPIRATION_MS);
        assert_eq!(
            expired.len(),
            2,
            "producers with an open transaction are kept"
        );
        let mut truncated = read;
        truncated.truncate_from(10);
        assert_eq!(truncated.first_unstable_offset(), Some(3));
        truncated.truncate_from(3);
        assert_eq!(truncated.first_unstable_offset(), None);
    }
}
