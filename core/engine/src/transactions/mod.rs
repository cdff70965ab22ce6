//! The transaction coordinator (transactions V1: KIP-98, KIP-360, KIP-447), beside the
//! group coordinator and shaped like it.
//!
//! Each transactional id's state is a [`TransactionMetadata`], changed only by the pure
//! transitions of `state.rs`. A transition is persisted to the compacted internal topic
//! `__transaction_state` (through its partition's storage, durable) before it is installed
//! in memory and answered; while one is in flight the id is busy and other requests for it
//! get CONCURRENT_TRANSACTIONS. Ending a transaction persists `PrepareCommit` or
//! `PrepareAbort`, writes a COMMIT or ABORT marker to every partition of the transaction
//! (the single-node WriteTxnMarkers; `__consumer_offsets` through the group coordinator,
//! which applies or drops the transaction's offsets with it), then persists the complete
//! state.
//!
//! A transactional append holds its transaction's gate (a read lock) from the check that
//! the partition is in the open transaction until its batches are written; ending takes
//! the gate for writing before the first marker. So no batch of a transaction lands after
//! its marker, which would leave a partition's last stable offset stuck behind it.
//!
//! At start-up the topic is read back: `PrepareCommit` and `PrepareAbort` transactions are
//! completed (their markers written again: a partition ignores a marker for a transaction
//! it no longer has open), `Ongoing` ones abort when they time out. The upkeep round aborts
//! timed-out transactions with a bumped epoch (fencing their producer), completes any
//! whose markers failed, and forgets ids unused for `transactional.id.expiration.ms`.

pub(crate) mod flows;
mod record;
pub(crate) mod state;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use fjord_partition::{PartitionIndex, ProducerEpoch, ProducerId};
use fjord_record::Records;
use tokio::sync::{OwnedRwLockReadGuard, RwLock};

pub use state::{TopicPartition, TransactionMetadata, TransactionState};

use crate::blocking::BlockingPool;
use crate::clock::Clock;
use crate::hooks::Hooks;
use crate::limits::{
    TRANSACTION_PARTITIONS_DEFAULT, TRANSACTIONAL_ID_BYTES_MAX, TRANSACTIONAL_IDS_DEFAULT,
};
use crate::producer_ids::ProducerIds;
use crate::topics::{Topic, Topics};
use crate::{Error, Result};

/// The internal topic's name, as in Kafka.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";
/// One partition: a single node coordinates every transactional id.
const STATE_PARTITION: PartitionIndex = PartitionIndex(0);

/// Coordinator settings, Kafka's `transaction.*` broker configs.
#[derive(Debug, Clone, Copy)]
pub struct TransactionConfig {
    /// `transaction.max.timeout.ms`: the longest `transaction.timeout.ms` a producer may ask.
    pub max_timeout_ms: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub abort_timed_out_interval: Duration,
    /// `transactional.id.expiration.ms`: an id unused this long is forgotten.
    pub transactional_id_expiration_ms: i64,
    /// Most transactional ids held, so clients cannot exhaust memory with ids.
    pub transactional_ids_max: usize,
    /// Most partitions one transaction may write.
    pub partitions_max: usize,
}

impl Default for TransactionConfig {
    fn default() -> Self {
        Self {
            max_timeout_ms: 900_000,
            abort_timed_out_interval: Duration::from_millis(10_000),
            transactional_id_expiration_ms: 7 * 24 * 3600 * 1000,
            transactional_ids_max: TRANSACTIONAL_IDS_DEFAULT,
            partitions_max: TRANSACTION_PARTITIONS_DEFAULT,
        }
    }
}

/// One transactional id in memory.
#[derive(Debug)]
struct Entry {
    metadata: TransactionMetadata,
    /// The producer and epoch before the last bump, when that bump was a client's KIP-360
    /// request naming them: its retry (the answer was lost) names them again.
    previous: Option<(ProducerId, ProducerEpoch)>,
    /// A transition is being persisted (or markers written): others wait.
    busy: bool,
    /// The transaction is ending: its producer may append no more.
    ending: bool,
    /// Held for reading by each append of the transaction, for writing by its end.
    gate: Arc<RwLock<()>>,
}

impl Entry {
    fn new(metadata: TransactionMetadata) -> Self {
        Self {
            metadata,
            previous: None,
            busy: false,
            ending: false,
            gate: Arc::new(RwLock::new(())),
        }
    }
}

#[derive(Debug, Default)]
struct Ids {
    entries: HashMap<String, Entry>,
    /// Each producer id's transactional id.
    by_producer: HashMap<ProducerId, String>,
}

impl Ids {
    fn install(&mut self, metadata: TransactionMetadata) {
        let id = metadata.transactional_id.clone();
        self.by_producer.insert(metadata.producer_id, id.clone());
        match self.entries.get_mut(&id) {
            Some(entry) => {
                if entry.metadata.producer_id != metadata.producer_id {
                    self.by_producer.remove(&entry.metadata.producer_id);
                }
                let before = (entry.metadata.producer_id, entry.metadata.producer_epoch);
                if before != (metadata.producer_id, metadata.producer_epoch) {
                    // A bump other than a client's KIP-360 one (which records it itself).
                    entry.previous = None;
                }
                entry.metadata = metadata;
            }
            None => {
                self.entries.insert(id, Entry::new(metadata));
            }
        }
    }

    fn remove(&mut self, transactional_id: &str) {
        if let Some(entry) = self.entries.remove(transactional_id) {
            self.by_producer.remove(&entry.metadata.producer_id);
        }
    }
}

/// An appender's hold on its transaction (see the module docs): the transaction cannot end
/// until it is dropped.
#[derive(Debug)]
pub(crate) struct TransactionGuard {
    _gate: OwnedRwLockReadGuard<()>,
}

#[derive(Debug)]
pub struct TransactionCoordinator {
    config: TransactionConfig,
    ids: Mutex<Ids>,
    state_topic: Arc<Topic>,
    producer_ids: Arc<ProducerIds>,
    clock: Arc<dyn Clock>,
    pool: BlockingPool,
    hooks: Hooks,
}

impl TransactionCoordinator {
    /// Opens (creating if needed) `__transaction_state` and loads every id's state.
    /// Transactions found preparing are completed by [`Self::complete_pending`], once the
    /// group coordinator is open too.
    pub(crate) async fn open(
        config: TransactionConfig,
        topics: &Arc<Topics>,
        producer_ids: Arc<ProducerIds>,
        clock: Arc<dyn Clock>,
        pool: BlockingPool,
        hooks: Hooks,
    ) -> Result<Self> {
        let now_ms = clock.now_ms();
        let state_topic = match topics.get(TRANSACTION_STATE_TOPIC) {
            Some(topic) => topic,
            None => {
                let overrides = std::collections::BTreeMap::from([
                    ("cleanup.policy".to_string(), "compact".to_string()),
                    ("segment.bytes".to_string(), (100 * 1024 * 1024).to_string()),
                ]);
                let topics = Arc::clone(topics);
                pool.run(move || {
                    topics.create(TRANSACTION_STATE_TOPIC, 1, overrides, false, now_ms)
                })
                .await?
            }
        };
        let coordinator = Self {
            config,
            ids: Mutex::new(Ids::default()),
            state_topic,
            producer_ids,
            clock,
            pool,
            hooks,
        };
        let loaded = coordinator.load().await?;
        tracing::info!(
            transactional_ids = loaded,
            "transaction coordinator loaded its state"
        );
        Ok(coordinator)
    }

    /// Reads `__transaction_state` into memory; returns the ids found.
    async fn load(&self) -> Result<usize> {
        let partition = self.state_topic.partition(STATE_PARTITION)?;
        let mut ids = Ids::default();
        let topic = TRANSACTION_STATE_TOPIC;
        crate::internal_topic::read_all(&*partition, &self.pool, topic, |batch| {
            let records = batch
                .decompressed_record_bytes(fjord_record::DECOMPRESSED_BYTES_MAX)
                .map_err(invalid_batch)?;
            for record in Records::new(&records) {
                let record = record.map_err(invalid_batch)?;
                match record.key.and_then(|key| record::decode(key, record.value)) {
                    Some((_, Some(metadata))) => ids.install(metadata),
                    Some((id, None)) => ids.remove(&id),
                    None => tracing::warn!(
                        offset = batch.header.base_offset + i64::from(record.offset_delta),
                        "skipping an unreadable record in {TRANSACTION_STATE_TOPIC}"
                    ),
                }
            }
            Ok(())
        })
        .await?;
        let count = ids.entries.len();
        *self.ids() = ids;
        Ok(count)
    }

    fn ids(&self) -> MutexGuard<'_, Ids> {
        self.ids.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state of each id asked for.
    pub fn describe(&self, transactional_ids: &[String]) -> Vec<Result<TransactionMetadata>> {
        let ids = self.ids();
        transactional_ids
            .iter()
            .map(|id| {
                ids.entries
                    .get(id)
                    .map(|e| e.metadata.clone())
                    .ok_or_else(|| Error::TransactionalIdNotFound {
                        transactional_id: id.clone(),
                    })
            })
            .collect()
    }

    /// Every id matching the filters (an empty filter matches all): its state, producer
    /// id, and, for `min_open_ms`, only transactions open at least that long.
    pub fn list(
        &self,
        states: &[TransactionState],
        producer_ids: &[ProducerId],
        min_open_ms: Option<i64>,
    ) -> Vec<TransactionMetadata> {
        let now_ms = self.clock.now_ms();
        // Filters as sets, built before the lock: a request may name millions of ids.
        let wanted: std::collections::HashSet<ProducerId> = producer_ids.iter().copied().collect();
        let mut listed: Vec<TransactionMetadata> = self
            .ids()
            .entries
            .values()
            .map(|e| &e.metadata)
            .filter(|m| states.is_empty() || states.contains(&m.state))
            .filter(|m| wanted.is_empty() || wanted.contains(&m.producer_id))
            .filter(|m| {
                min_open_ms.is_none_or(|min| {
                    m.state == TransactionState::Ongoing && now_ms - m.start_ms >= min
                })
            })
            .cloned()
            .collect();
        listed.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        listed
    }

    /// How many transactional ids are in each state, and when the oldest open transaction
    /// began (for metrics; no metadata is copied).
    pub fn summary(&self) -> ([(TransactionState, usize); 8], Option<i64>) {
        let mut counts = TransactionState::ALL.map(|state| (state, 0));
        let mut oldest_start_ms = None;
        for entry in self.ids().entries.values() {
            let metadata = &entry.metadata;
            if let Some(count) = counts.iter_mut().find(|(s, _)| *s == metadata.state) {
                count.1 += 1;
            }
            if metadata.state == TransactionState::Ongoing {
                let start = oldest_start_ms.get_or_insert(metadata.start_ms);
                *start = (*start).min(metadata.start_ms);
            }
        }
        (counts, oldest_start_ms)
    }

    /// Checks that `producer_id` at `producer_epoch` has an open transaction holding
    /// `partition`, and holds that transaction open until the guard is dropped.
    pub(crate) async fn begin_append(
        &self,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        partition: &TopicPartition,
    ) -> Result<TransactionGuard> {
        let not_in = || Error::PartitionNotInTransaction {
            producer_id: producer_id.0,
        };
        let gate = {
            let ids = self.ids();
            let id = ids.by_producer.get(&producer_id).ok_or_else(not_in)?;
            let entry = ids.entries.get(id).ok_or_else(not_in)?;
            Arc::clone(&entry.gate)
        };
        let held = gate.read_owned().await;
        let ids = self.ids();
        let entry = ids
            .by_producer
            .get(&producer_id)
            .and_then(|id| ids.entries.get(id))
            .ok_or_else(not_in)?;
        let metadata = &entry.metadata;
        if metadata.producer_epoch != producer_epoch {
            return Err(fjord_partition::Error::InvalidProducerEpoch {
                producer_id: producer_id.0,
                producer_epoch: producer_epoch.0,
                current_epoch: metadata.producer_epoch.0,
            }
            .into());
        }
        let open = metadata.state == TransactionState::Ongoing && !entry.ending;
        if !open || !metadata.partitions.contains(partition) {
            return Err(not_in());
        }
        Ok(TransactionGuard { _gate: held })
    }

    /// When the upkeep should next look for timed-out transactions.
    pub(crate) fn abort_interval(&self) -> Duration {
        self.config.abort_timed_out_interval
    }
}

/// Checks a transactional id as a request names it.
fn validate_transactional_id(transactional_id: &str) -> Result<()> {
    if transactional_id.is_empty() {
        return Err(Error::InvalidTransactionalId { reason: "empty" });
    }
    if transactional_id.len() > TRANSACTIONAL_ID_BYTES_MAX {
        return Err(Error::InvalidTransactionalId {
            reason: "longer than the broker accepts",
        });
    }
    Ok(())
}

fn invalid_batch(error: fjord_record::Error) -> Error {
    crate::groups::offsets::invalid_batch(error)
}
