//! The coordinator's requests as flows: plan a transition under the lock, persist it to
//! `__transaction_state` without the lock, install it. Ending a transaction also writes its
//! markers ([`Markers`]).

use fjord_partition::{ProducerEpoch, ProducerId};
use fjord_record::{BatchBuilder, Compression, ControlType, NewRecord};

use super::state::{End, Init, TopicPartition, TransactionMetadata, TransactionState};
use super::{STATE_PARTITION, TransactionCoordinator, record, validate_transactional_id};
use crate::groups::Coordinator;
use crate::groups::offsets::{OFFSETS_TOPIC, invalid_batch};
use crate::hooks::HookPoint;
use crate::join::join_all;
use crate::topics::Topics;
use crate::{Error, Result};

/// What writing markers needs: the partitions (through the catalog) and the group
/// coordinator, which writes the marker of `__consumer_offsets` itself.
#[derive(Clone, Copy)]
pub(crate) struct Markers<'a> {
    pub(crate) topics: &'a Topics,
    pub(crate) groups: &'a Coordinator,
}

/// The coordinator epoch markers carry: a single node's transaction coordinator never moves.
const COORDINATOR_EPOCH: i32 = 0;

/// Clears an id's busy (and ending) flag when a flow ends, however it ends: an error or a
/// dropped request leaves the id at its last persisted state, never stuck.
struct Busy<'a> {
    coordinator: &'a TransactionCoordinator,
    transactional_id: String,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if let Some(entry) = self
            .coordinator
            .ids()
            .entries
            .get_mut(&self.transactional_id)
        {
            entry.busy = false;
            entry.ending = false;
        }
    }
}

impl TransactionCoordinator {
    /// InitProducerId with a transactional id: the id's producer with its epoch bumped (a
    /// new id gets a new producer at epoch 0). An open transaction of an earlier incarnation
    /// is aborted first, with the epoch bumped, so that incarnation is fenced. `expected` is
    /// the producer the client had (KIP-360).
    pub(crate) async fn init_producer(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(ProducerId, ProducerEpoch)>,
        markers: Markers<'_>,
    ) -> Result<(ProducerId, ProducerEpoch)> {
        validate_transactional_id(transactional_id)?;
        if !(1..=self.config.max_timeout_ms).contains(&timeout_ms) {
            return Err(Error::InvalidTransactionTimeout {
                timeout_ms,
                max_ms: self.config.max_timeout_ms,
            });
        }
        // At most twice: an open transaction is aborted, then the id initialised.
        let mut expected = expected;
        for _ in 0..2 {
            let fresh = self.fresh_producer_id(transactional_id).await?;
            let now_ms = self.clock.now_ms();
            let (plan, busy) = {
                let mut ids = self.ids();
                if !ids.entries.contains_key(transactional_id) {
                    if ids.entries.len() >= self.config.transactional_ids_max {
                        return Err(Error::CoordinatorNotAvailable);
                    }
                    let producer_id = fresh.ok_or(Error::CoordinatorNotAvailable)?;
                    let metadata =
                        TransactionMetadata::new(transactional_id, producer_id, timeout_ms, now_ms);
                    ids.install(metadata);
                }
                let entry = ids
                    .entries
                    .get_mut(transactional_id)
                    .ok_or(Error::CoordinatorNotAvailable)?;
                if entry.busy {
                    return Err(Error::ConcurrentTransactions {
                        transactional_id: transactional_id.to_string(),
                    });
                }
                let decided = matches!(
                    entry.metadata.state,
                    TransactionState::PrepareCommit | TransactionState::PrepareAbort
                );
                let plan = if decided {
                    // Not busy, yet decided: the EndTxn that decided it is gone (its request
                    // or in-process writer dropped after persisting the outcome). Finish its
                    // markers here, as the upkeep would, instead of answering
                    // CONCURRENT_TRANSACTIONS until the upkeep's next round.
                    Init::AbortFirst(entry.metadata.clone())
                } else {
                    entry
                        .metadata
                        .init(timeout_ms, expected, entry.previous, fresh, now_ms)?
                };
                (plan, self.mark_busy(entry, transactional_id, false))
            };
            match plan {
                Init::Ready(next) => {
                    let producer = (next.producer_id, next.producer_epoch);
                    self.persist(&next).await?;
                    let mut ids = self.ids();
                    let before = ids
                        .entries
                        .get(transactional_id)
                        .map(|e| (e.metadata.producer_id, e.metadata.producer_epoch));
                    ids.install(next);
                    if let Some(entry) = ids.entries.get_mut(transactional_id)
                        && before != Some(producer)
                        && expected.is_some()
                        && expected == before
                    {
                        entry.previous = before;
                    }
                    drop(ids);
                    drop(busy);
                    return Ok(producer);
                }
                Init::AbortFirst(fenced) => {
                    // A client bumping its own epoch (KIP-360) with a transaction open: the
                    // abort fences that epoch, and the client is answered with the one after.
                    let own_bump = expected.is_some_and(|(id, epoch)| {
                        id == fenced.producer_id
                            && epoch.0.checked_add(1) == Some(fenced.producer_epoch.0)
                    });
                    if own_bump {
                        expected = Some((fenced.producer_id, fenced.producer_epoch));
                    }
                    self.set_ending(transactional_id);
                    self.finish(fenced, markers).await?;
                    drop(busy);
                }
            }
        }
        Err(Error::ConcurrentTransactions {
            transactional_id: transactional_id.to_string(),
        })
    }

    /// A new producer id if `transactional_id` needs one (unknown, or its epoch exhausted).
    async fn fresh_producer_id(&self, transactional_id: &str) -> Result<Option<ProducerId>> {
        let needed = self
            .ids()
            .entries
            .get(transactional_id)
            .is_none_or(|e| e.metadata.epoch_exhausted());
        if !needed {
            return Ok(None);
        }
        let producer_ids = std::sync::Arc::clone(&self.producer_ids);
        let id = self
            .pool
            .run(move || producer_ids.allocate().map(ProducerId))
            .await?;
        Ok(Some(id))
    }

    /// AddPartitionsToTxn and AddOffsetsToTxn: the partitions join the open transaction
    /// (which opens with the first), persisted before this returns.
    pub(crate) async fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        partitions: &[TopicPartition],
    ) -> Result<()> {
        let now_ms = self.clock.now_ms();
        let (next, busy) = {
            let mut ids = self.ids();
            let entry = self.entry_for(&mut ids, transactional_id, producer_id)?;
            let next = entry.metadata.add_partitions(
                producer_id,
                producer_epoch,
                partitions,
                self.config.partitions_max,
                now_ms,
            )?;
            let Some(next) = next else {
                return Ok(());
            };
            (next, self.mark_busy(entry, transactional_id, false))
        };
        self.persist(&next).await?;
        self.ids().install(next);
        drop(busy);
        Ok(())
    }

    /// EndTxn: the outcome persisted, then the transaction's markers (COMMIT or ABORT)
    /// written to every partition and the complete state persisted (see `finish` for
    /// a failure after the outcome is decided). A retry of an end already done succeeds.
    pub(crate) async fn end(
        &self,
        transactional_id: &str,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        commit: bool,
        markers: Markers<'_>,
    ) -> Result<()> {
        let now_ms = self.clock.now_ms();
        let (prepared, busy) = {
            let mut ids = self.ids();
            let entry = self.entry_for(&mut ids, transactional_id, producer_id)?;
            match entry
                .metadata
                .end(producer_id, producer_epoch, commit, now_ms)?
            {
                End::AlreadyDone => return Ok(()),
                End::Prepare(prepared) => (prepared, self.mark_busy(entry, transactional_id, true)),
            }
        };
        self.finish(prepared, markers).await?;
        drop(busy);
        Ok(())
    }

    /// Aborts transactions past their timeout (fencing their producer with a bumped epoch),
    /// completes transactions whose markers were not all written, and forgets ids unused
    /// for `transactional.id.expiration.ms`. Returns how many transactions it ended.
    pub(crate) async fn abort_timed_out(&self, markers: Markers<'_>) -> Result<usize> {
        let now_ms = self.clock.now_ms();
        let mut ended = 0;
        let mut expired = Vec::new();
        let due: Vec<(TransactionMetadata, Busy<'_>)> = {
            let mut ids = self.ids();
            let mut due = Vec::new();
            for (id, entry) in ids.entries.iter_mut() {
                if entry.busy {
                    continue;
                }
                let metadata = &entry.metadata;
                let next = if metadata.timed_out(now_ms) {
                    tracing::info!(transactional_id = %id, producer_id = %metadata.producer_id, "aborting a transaction past its timeout");
                    metadata.fence(now_ms)
                } else if matches!(
                    metadata.state,
                    TransactionState::PrepareCommit | TransactionState::PrepareAbort
                ) {
                    metadata.clone()
                } else {
                    if metadata.expired(now_ms, self.config.transactional_id_expiration_ms) {
                        expired.push(id.clone());
                    }
                    continue;
                };
                due.push((next, self.mark_busy(entry, id, true)));
            }
            due
        };
        // One transaction failing to end (a partition's disk, say) does not hold up the
        // others; it is tried again next round.
        let mut failed = None;
        for (next, busy) in due {
            let transactional_id = next.transactional_id.clone();
            match self.finish(next, markers).await {
                Ok(()) => ended += 1,
                Err(error) => {
                    tracing::warn!(%transactional_id, %error, "could not end a transaction; retrying next round");
                    failed.get_or_insert(error);
                }
            }
            drop(busy);
        }
        for id in expired {
            if let Err(error) = self.expire(&id).await {
                failed.get_or_insert(error);
            }
        }
        match failed {
            Some(error) => Err(error),
            None => Ok(ended),
        }
    }

    /// Completes the transactions found preparing at start-up (see the module docs).
    pub(crate) async fn complete_pending(&self, markers: Markers<'_>) -> Result<usize> {
        self.abort_timed_out(markers).await
    }

    /// Forgets an id (a tombstone in `__transaction_state`), unless it was used meanwhile.
    async fn expire(&self, transactional_id: &str) -> Result<()> {
        let busy = {
            let mut ids = self.ids();
            let Some(entry) = ids.entries.get_mut(transactional_id) else {
                return Ok(());
            };
            // Used since it was found idle (this round awaited other work meanwhile)?
            let expiration_ms = self.config.transactional_id_expiration_ms;
            if entry.busy || !entry.metadata.expired(self.clock.now_ms(), expiration_ms) {
                return Ok(());
            }
            self.mark_busy(entry, transactional_id, false)
        };
        self.write_record(transactional_id, None).await?;
        tracing::info!(transactional_id, "transactional id expired");
        self.ids().remove(transactional_id);
        drop(busy);
        Ok(())
    }

    /// Waits out the transaction's appends, persists a `Prepare*` state, writes the markers,
    /// and persists and installs the complete state. An error is returned only while the
    /// outcome is not yet decided (the `Prepare*` state not written).
    async fn finish(&self, prepared: TransactionMetadata, markers: Markers<'_>) -> Result<()> {
        let gate = self
            .ids()
            .entries
            .get(&prepared.transactional_id)
            .map(|e| std::sync::Arc::clone(&e.gate));
        let _no_appends = match &gate {
            Some(gate) => Some(gate.write().await),
            None => None,
        };
        self.persist(&prepared).await?;
        self.ids().install(prepared.clone());
        // Decided: from here on a failure is the coordinator's to retry (the upkeep completes
        // what is left preparing), never the client's to see. Kafka answers EndTxn once the
        // Prepare state is written, and a client told of an error would abort a transaction
        // that is going to commit.
        if let Err(error) = self.write_outcome(&prepared, markers).await {
            tracing::warn!(
                transactional_id = %prepared.transactional_id,
                %error,
                "transaction decided, its markers not all written: the upkeep retries"
            );
        }
        Ok(())
    }

    /// The markers of a decided transaction, then its complete state.
    async fn write_outcome(
        &self,
        prepared: &TransactionMetadata,
        markers: Markers<'_>,
    ) -> Result<()> {
        self.hooks
            .reached_async(HookPoint::MarkersWriting, &self.pool)
            .await?;
        let commit = prepared.state == TransactionState::PrepareCommit;
        write_markers(prepared, commit, self.clock.now_ms(), markers).await?;
        let complete = prepared.complete(self.clock.now_ms());
        self.persist(&complete).await?;
        self.ids().install(complete);
        Ok(())
    }

    /// The id's entry, if it belongs to `producer_id` and is not busy.
    fn entry_for<'a>(
        &self,
        ids: &'a mut super::Ids,
        transactional_id: &str,
        producer_id: ProducerId,
    ) -> Result<&'a mut super::Entry> {
        let entry = ids.entries.get_mut(transactional_id).ok_or_else(|| {
            Error::InvalidProducerIdMapping {
                transactional_id: transactional_id.to_string(),
                producer_id: producer_id.0,
            }
        })?;
        if entry.busy {
            return Err(Error::ConcurrentTransactions {
                transactional_id: transactional_id.to_string(),
            });
        }
        Ok(entry)
    }

    fn mark_busy(
        &self,
        entry: &mut super::Entry,
        transactional_id: &str,
        ending: bool,
    ) -> Busy<'_> {
        entry.busy = true;
        entry.ending = ending;
        Busy {
            coordinator: self,
            transactional_id: transactional_id.to_string(),
        }
    }

    fn set_ending(&self, transactional_id: &str) {
        if let Some(entry) = self.ids().entries.get_mut(transactional_id) {
            entry.ending = true;
        }
    }

    async fn persist(&self, metadata: &TransactionMetadata) -> Result<()> {
        self.write_record(&metadata.transactional_id, Some(metadata))
            .await
    }

    /// Appends one record to `__transaction_state`, durable before this returns.
    async fn write_record(
        &self,
        transactional_id: &str,
        metadata: Option<&TransactionMetadata>,
    ) -> Result<()> {
        let now_ms = self.clock.now_ms();
        let key = record::encode_key(transactional_id);
        let value = metadata.map(record::encode_value);
        let mut builder = BatchBuilder::new(Compression::None);
        builder
            .push(&NewRecord {
                timestamp_ms: now_ms,
                key: Some(&key),
                value: value.as_deref(),
                headers: &[],
            })
            .map_err(invalid_batch)?;
        let batch = bytes::Bytes::from(builder.build().map_err(invalid_batch)?);
        let partition = self.state_topic.partition(STATE_PARTITION)?;
        let appended = partition.append(batch, now_ms).await?;
        partition.make_durable(appended.last_offset).await
    }
}

/// Writes the transaction's marker to each of its partitions, at once. A partition whose
/// topic was deleted meanwhile needs none.
async fn write_markers(
    transaction: &TransactionMetadata,
    commit: bool,
    now_ms: i64,
    markers: Markers<'_>,
) -> Result<()> {
    let kind = if commit {
        ControlType::Commit
    } else {
        ControlType::Abort
    };
    let (producer_id, producer_epoch) = (transaction.producer_id, transaction.producer_epoch);
    let marker = kind
        .marker_batch(producer_id.0, producer_epoch.0, COORDINATOR_EPOCH, now_ms)
        .map_err(invalid_batch)?;
    let marker = bytes::Bytes::from(marker);
    let writes = transaction.partitions.iter().map(|(topic, partition)| {
        let marker = marker.clone();
        async move {
            if topic == OFFSETS_TOPIC {
                return markers
                    .groups
                    .complete_transaction(producer_id, marker, commit)
                    .await;
            }
            let Some(topic) = markers.topics.get(topic) else {
                return Ok(());
            };
            let storage = match topic.partition(*partition) {
                Ok(storage) => storage,
                Err(Error::UnknownPartition { .. }) => return Ok(()),
                Err(error) => return Err(error),
            };
            let appended = storage.append(marker, now_ms).await?;
            storage.make_durable(appended.last_offset).await
        }
    });
    join_all(writes.collect())
        .await
        .into_iter()
        .collect::<Result<Vec<()>>>()?;
    Ok(())
}
