//! One transactional id's state: Kafka's `TransactionMetadata` and its transitions
//! (transactions V1: KIP-98, KIP-360), as a pure state machine. Each transition checks the
//! request against the state and returns the state to persist; nothing changes here until the
//! coordinator has written that state to `__transaction_state` and installs it. Time is passed
//! in.

use std::collections::BTreeSet;

use fjord_partition::{PartitionIndex, ProducerEpoch, ProducerId};

use crate::{Error, Result};

/// A partition of a transaction.
pub type TopicPartition = (String, PartitionIndex);

/// Where a transactional id stands (Kafka's `TransactionState`; the numbers are its ids in
/// `__transaction_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionState {
    /// No transaction open (after InitProducerId).
    Empty,
    /// Partitions or offsets were added: a transaction is open.
    Ongoing,
    /// EndTxn(commit) accepted; markers are being written.
    PrepareCommit,
    /// EndTxn(abort), a timeout or a fence accepted; markers are being written.
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    /// Expired: the id is being forgotten.
    Dead,
    /// An open transaction is being aborted with a bumped epoch to fence its producer.
    PrepareEpochFence,
}

impl TransactionState {
    pub(crate) fn id(self) -> i8 {
        match self {
            Self::Empty => 0,
            Self::Ongoing => 1,
            Self::PrepareCommit => 2,
            Self::PrepareAbort => 3,
            Self::CompleteCommit => 4,
            Self::CompleteAbort => 5,
            Self::Dead => 6,
            Self::PrepareEpochFence => 7,
        }
    }

    /// Every state, in Kafka's id order.
    pub const ALL: [Self; 8] = [
        Self::Empty,
        Self::Ongoing,
        Self::PrepareCommit,
        Self::PrepareAbort,
        Self::CompleteCommit,
        Self::CompleteAbort,
        Self::Dead,
        Self::PrepareEpochFence,
    ];

    pub(crate) fn from_id(id: i8) -> Option<Self> {
        Some(match id {
            0 => Self::Empty,
            1 => Self::Ongoing,
            2 => Self::PrepareCommit,
            3 => Self::PrepareAbort,
            4 => Self::CompleteCommit,
            5 => Self::CompleteAbort,
            6 => Self::Dead,
            7 => Self::PrepareEpochFence,
            _ => return None,
        })
    }

    /// Kafka's name, as DescribeTransactions and ListTransactions show it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::Ongoing => "Ongoing",
            Self::PrepareCommit => "PrepareCommit",
            Self::PrepareAbort => "PrepareAbort",
            Self::CompleteCommit => "CompleteCommit",
            Self::CompleteAbort => "CompleteAbort",
            Self::Dead => "Dead",
            Self::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// The state named `name` (Kafka's names), for ListTransactions' state filter.
    pub fn from_name(name: &str) -> Option<Self> {
        (0..=7)
            .filter_map(Self::from_id)
            .find(|state| state.name() == name)
    }

    /// Markers are being written: a retry must wait.
    fn preparing(self) -> bool {
        matches!(
            self,
            Self::PrepareCommit | Self::PrepareAbort | Self::PrepareEpochFence
        )
    }
}

/// The largest epoch a producer id is given; past it the id is replaced (Kafka keeps
/// `Short.MaxValue` for fencing).
const EPOCH_LAST: i16 = i16::MAX - 1;

/// What `__transaction_state` stores per transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionMetadata {
    pub transactional_id: String,
    pub producer_id: ProducerId,
    pub producer_epoch: ProducerEpoch,
    /// `transaction.timeout.ms` as the producer asked for it.
    pub timeout_ms: i32,
    pub state: TransactionState,
    /// The partitions written in the open transaction (empty when none is open).
    pub partitions: BTreeSet<TopicPartition>,
    /// When the open transaction began (its first partition added); -1 when none is open.
    pub start_ms: i64,
    pub last_update_ms: i64,
}

/// What InitProducerId must do for an id that has state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Init {
    /// Persist this (the epoch bumped, or a new producer id) and answer with its producer.
    Ready(TransactionMetadata),
    /// A transaction of the previous incarnation is open: abort it first, with the epoch
    /// bumped (persist this, write ABORT markers, complete), then initialise again.
    AbortFirst(TransactionMetadata),
}

/// What EndTxn must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Persist this (`PrepareCommit` or `PrepareAbort`), write the markers, complete.
    Prepare(TransactionMetadata),
    /// The transaction already ended this way: a retry, answered with success.
    AlreadyDone,
}

impl TransactionMetadata {
    /// A new id's state before its first InitProducerId (Kafka starts at epoch -1, so the
    /// first bump gives 0).
    pub fn new(
        transactional_id: &str,
        producer_id: ProducerId,
        timeout_ms: i32,
        now_ms: i64,
    ) -> Self {
        Self {
            transactional_id: transactional_id.to_string(),
            producer_id,
            producer_epoch: ProducerEpoch(-1),
            timeout_ms,
            state: TransactionState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now_ms,
        }
    }

    /// The epoch cannot be bumped again: InitProducerId needs a new producer id.
    pub fn epoch_exhausted(&self) -> bool {
        self.producer_epoch.0 >= EPOCH_LAST
    }

    /// InitProducerId. `expected` is the producer and epoch the client had (KIP-360), if it
    /// sent them; `previous` is the producer and epoch before the last bump, so a retried
    /// bump whose answer was lost is recognised; `fresh_id` replaces an exhausted producer
    /// id (the caller allocates one when [`Self::epoch_exhausted`]).
    pub fn init(
        &self,
        timeout_ms: i32,
        expected: Option<(ProducerId, ProducerEpoch)>,
        previous: Option<(ProducerId, ProducerEpoch)>,
        fresh_id: Option<ProducerId>,
        now_ms: i64,
    ) -> Result<Init> {
        if self.state.preparing() {
            return Err(self.concurrent());
        }
        if let Some((producer_id, producer_epoch)) = expected {
            let current = producer_id == self.producer_id && producer_epoch == self.producer_epoch;
            // Only while no transaction is open: a client that opened one has its answer.
            let settled = matches!(
                self.state,
                TransactionState::Empty
                    | TransactionState::CompleteCommit
                    | TransactionState::CompleteAbort
            );
            let retried = settled && previous == Some((producer_id, producer_epoch));
            if retried && producer_id == self.producer_id {
                // The bump this client asks for already happened: answer it again.
                return Ok(Init::Ready(self.clone()));
            }
            if !current && !retried && self.producer_epoch.0 >= 0 {
                return Err(self.fenced(producer_epoch));
            }
        }
        match self.state {
            TransactionState::Ongoing => Ok(Init::AbortFirst(self.fence(now_ms))),
            _ => {
                let mut next = self.clone();
                match fresh_id {
                    Some(producer_id) if self.epoch_exhausted() => {
                        next.producer_id = producer_id;
                        next.producer_epoch = ProducerEpoch(0);
                    }
                    _ => next.producer_epoch = ProducerEpoch(self.producer_epoch.0 + 1),
                }
                next.timeout_ms = timeout_ms;
                next.state = TransactionState::Empty;
                next.partitions.clear();
                next.start_ms = -1;
                next.last_update_ms = now_ms;
                Ok(Init::Ready(next))
            }
        }
    }

    /// AddPartitionsToTxn and AddOffsetsToTxn: `None` when every partition is in the open
    /// transaction already (nothing to persist).
    pub fn add_partitions(
        &self,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        partitions: &[TopicPartition],
        partitions_max: usize,
        now_ms: i64,
    ) -> Result<Option<Self>> {
        self.check_producer(producer_id, producer_epoch)?;
        if self.state.preparing() {
            return Err(self.concurrent());
        }
        let open = self.state == TransactionState::Ongoing;
        if open && partitions.iter().all(|p| self.partitions.contains(p)) {
            return Ok(None);
        }
        let mut next = self.clone();
        if !open {
            next.partitions.clear();
            next.start_ms = now_ms;
        }
        next.partitions.extend(partitions.iter().cloned());
        if next.partitions.len() > partitions_max {
            return Err(Error::TransactionTooLarge { partitions_max });
        }
        next.state = TransactionState::Ongoing;
        next.last_update_ms = now_ms;
        Ok(Some(next))
    }

    /// EndTxn.
    pub fn end(
        &self,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        commit: bool,
        now_ms: i64,
    ) -> Result<End> {
        self.check_producer(producer_id, producer_epoch)?;
        use TransactionState as S;
        match (self.state, commit) {
            (S::Ongoing, _) => {
                let mut next = self.clone();
                next.state = if commit {
                    S::PrepareCommit
                } else {
                    S::PrepareAbort
                };
                next.last_update_ms = now_ms;
                Ok(End::Prepare(next))
            }
            (S::CompleteCommit, true) | (S::CompleteAbort, false) => Ok(End::AlreadyDone),
            (S::PrepareCommit, true) | (S::PrepareAbort, false) | (S::PrepareEpochFence, _) => {
                Err(self.concurrent())
            }
            (state, _) => Err(Error::InvalidTxnState {
                transactional_id: self.transactional_id.clone(),
                reason: format!(
                    "cannot {} a transaction in state {}",
                    if commit { "commit" } else { "abort" },
                    state.name()
                ),
            }),
        }
    }

    /// The open transaction aborted by the coordinator (timed out, or a new incarnation of
    /// its producer): the epoch is bumped so the old producer is fenced, and the markers are
    /// written with the new epoch.
    pub fn fence(&self, now_ms: i64) -> Self {
        let mut next = self.clone();
        if self.producer_epoch.0 < i16::MAX {
            next.producer_epoch = ProducerEpoch(self.producer_epoch.0 + 1);
        }
        next.state = TransactionState::PrepareAbort;
        next.last_update_ms = now_ms;
        next
    }

    /// After the markers: `CompleteCommit` or `CompleteAbort`, no partitions.
    pub fn complete(&self, now_ms: i64) -> Self {
        let mut next = self.clone();
        next.state = match self.state {
            TransactionState::PrepareCommit => TransactionState::CompleteCommit,
            _ => TransactionState::CompleteAbort,
        };
        next.partitions.clear();
        next.last_update_ms = now_ms;
        next
    }

    /// The open transaction has outlived its timeout.
    pub fn timed_out(&self, now_ms: i64) -> bool {
        self.state == TransactionState::Ongoing
            && now_ms.saturating_sub(self.start_ms) > i64::from(self.timeout_ms)
    }

    /// No transaction open and untouched for `expiration_ms`
    /// (`transactional.id.expiration.ms`): the id may be forgotten.
    pub fn expired(&self, now_ms: i64, expiration_ms: i64) -> bool {
        matches!(
            self.state,
            TransactionState::Empty
                | TransactionState::CompleteCommit
                | TransactionState::CompleteAbort
        ) && now_ms.saturating_sub(self.last_update_ms) >= expiration_ms
    }

    /// The request's producer is this id's current one.
    pub fn check_producer(
        &self,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
    ) -> Result<()> {
        if producer_id != self.producer_id {
            return Err(Error::InvalidProducerIdMapping {
                transactional_id: self.transactional_id.clone(),
                producer_id: producer_id.0,
            });
        }
        if producer_epoch != self.producer_epoch {
            return Err(self.fenced(producer_epoch));
        }
        Ok(())
    }

    fn fenced(&self, producer_epoch: ProducerEpoch) -> Error {
        Error::ProducerFenced {
            transactional_id: self.transactional_id.clone(),
            producer_epoch: producer_epoch.0,
            current_epoch: self.producer_epoch.0,
        }
    }

    fn concurrent(&self) -> Error {
        Error::ConcurrentTransactions {
            transactional_id: self.transactional_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TransactionState as S;

    const PID: ProducerId = ProducerId(7);

    fn ready(init: Result<Init>) -> TransactionMetadata {
        match init {
            Ok(Init::Ready(next)) => next,
            other => panic!("expected Ready, got {other:?}"),
        }
    }

    fn initialised() -> TransactionMetadata {
        ready(TransactionMetadata::new("t", PID, 60_000, 0).init(60_000, None, None, None, 0))
    }

    fn partition(topic: &str, index: i32) -> TopicPartition {
        (topic.to_string(), PartitionIndex(index))
    }

    #[test]
    fn a_transaction_goes_from_empty_through_ongoing_to_complete() -> Result<()> {
        let empty = initialised();
        assert_eq!(
            (empty.producer_epoch, empty.state),
            (ProducerEpoch(0), S::Empty)
        );
        let epoch = empty.producer_epoch;
        let ongoing = empty
            .add_partitions(PID, epoch, &[partition("a", 0)], 10, 5)?
            .expect("a change");
        assert_eq!((ongoing.state, ongoing.start_ms), (S::Ongoing, 5));
        assert_eq!(
            ongoing.add_partitions(PID, epoch, &[partition("a", 0)], 10, 6)?,
            None,
            "already in"
        );
        let wider = ongoing
            .add_partitions(PID, epoch, &[partition("b", 1)], 10, 7)?
            .expect("a change");
        assert_eq!((wider.partitions.len(), wider.start_ms), (2, 5));

        let End::Prepare(prepared) = wider.end(PID, epoch, true, 8)? else {
            panic!("an open transaction is prepared");
        };
        assert_eq!(prepared.state, S::PrepareCommit);
        assert!(matches!(
            prepared.end(PID, epoch, true, 8),
            Err(Error::ConcurrentTransactions { .. })
        ));
        assert!(matches!(
            prepared.add_partitions(PID, epoch, &[partition("a", 0)], 10, 8),
            Err(Error::ConcurrentTransactions { .. })
        ));
        let done = prepared.complete(9);
        assert_eq!((done.state, done.partitions.len()), (S::CompleteCommit, 0));
        assert_eq!(done.end(PID, epoch, true, 9)?, End::AlreadyDone);
        assert!(matches!(
            done.end(PID, epoch, false, 9),
            Err(Error::InvalidTxnState { .. })
        ));
        let next = done
            .add_partitions(PID, epoch, &[partition("c", 0)], 10, 20)?
            .expect("a new transaction");
        assert_eq!(next.partitions, BTreeSet::from([partition("c", 0)]));
        assert_eq!(next.start_ms, 20);
        Ok(())
    }

    #[test]
    fn requests_from_another_producer_or_epoch_are_refused() {
        let empty = initialised();
        assert!(matches!(
            empty.add_partitions(ProducerId(8), ProducerEpoch(0), &[], 10, 0),
            Err(Error::InvalidProducerIdMapping { .. })
        ));
        let bumped = ready(empty.init(60_000, None, None, None, 1));
        assert_eq!(bumped.producer_epoch, ProducerEpoch(1));
        assert!(matches!(
            bumped.end(PID, ProducerEpoch(0), true, 1),
            Err(Error::ProducerFenced { .. })
        ));
        assert!(matches!(
            empty.end(PID, ProducerEpoch(0), true, 1),
            Err(Error::InvalidTxnState { .. })
        ));
        let too_many: Vec<_> = (0..3).map(|i| partition("a", i)).collect();
        assert!(matches!(
            empty.add_partitions(PID, ProducerEpoch(0), &too_many, 2, 0),
            Err(Error::TransactionTooLarge { .. })
        ));
    }

    #[test]
    fn init_fences_an_open_transaction_and_honours_kip_360() -> Result<()> {
        let empty = initialised();
        let ongoing = empty
            .add_partitions(PID, ProducerEpoch(0), &[partition("a", 0)], 10, 1)?
            .expect("a change");
        let Ok(Init::AbortFirst(fenced)) = ongoing.init(60_000, None, None, None, 2) else {
            panic!("an open transaction is aborted first");
        };
        assert_eq!(
            (fenced.state, fenced.producer_epoch),
            (S::PrepareAbort, ProducerEpoch(1))
        );
        assert_eq!(
            fenced.partitions.len(),
            1,
            "its markers go to its partitions"
        );
        let aborted = fenced.complete(3);
        let again = ready(aborted.init(60_000, None, None, None, 4));
        assert_eq!(
            (again.state, again.producer_epoch),
            (S::Empty, ProducerEpoch(2))
        );

        // KIP-360: the producer's own current epoch bumps; a stale one is fenced; a retry of
        // the bump just made is answered again without another bump.
        let bumped = ready(again.init(60_000, Some((PID, ProducerEpoch(2))), None, None, 5));
        assert_eq!(bumped.producer_epoch, ProducerEpoch(3));
        assert!(matches!(
            bumped.init(60_000, Some((PID, ProducerEpoch(1))), None, None, 6),
            Err(Error::ProducerFenced { .. })
        ));
        let previous = Some((PID, ProducerEpoch(2)));
        let retried = ready(bumped.init(60_000, previous, previous, None, 6));
        assert_eq!(retried.producer_epoch, ProducerEpoch(3));
        Ok(())
    }

    #[test]
    fn an_exhausted_epoch_takes_a_new_producer_id() {
        let mut last = initialised();
        last.producer_epoch = ProducerEpoch(EPOCH_LAST);
        assert!(last.epoch_exhausted());
        let next = ready(last.init(60_000, None, None, Some(ProducerId(99)), 1));
        assert_eq!(
            (next.producer_id, next.producer_epoch),
            (ProducerId(99), ProducerEpoch(0))
        );
    }

    #[test]
    fn timeouts_and_expiry_follow_the_clock() -> Result<()> {
        let empty = initialised();
        let ongoing = empty
            .add_partitions(PID, ProducerEpoch(0), &[partition("a", 0)], 10, 1_000)?
            .expect("a change");
        assert!(!ongoing.timed_out(61_000));
        assert!(ongoing.timed_out(61_001));
        assert!(
            !ongoing.expired(i64::MAX, 1),
            "an open transaction never expires"
        );
        assert!(empty.expired(100, 100));
        assert!(!empty.expired(99, 100));
        for state in (0..=7).filter_map(TransactionState::from_id) {
            assert_eq!(TransactionState::from_name(state.name()), Some(state));
        }
        Ok(())
    }
}
