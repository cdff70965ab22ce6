//! The data path: append, read, wait for new data, offsets.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use tokio::sync::watch;

use super::Engine;
use crate::join::join_all;
use crate::partition::{
    Acks, Appended, Batches, Isolation, PartitionOffsets, PartitionStorage, ReadRange,
    TimestampOffset,
};
use crate::{Error, Result};
use fjord_partition::{AbortedTransaction, Offset, PartitionIndex, ProducerEpoch, ProducerId};

/// Who is appending. The rules differ: only the coordinators write internal topics and
/// control batches; a transactional batch of anyone else must belong to an open transaction
/// holding the partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A Kafka client's produce request.
    Client,
    /// A coordinator of the engine (groups, transactions).
    Coordinator,
    /// An in-process writer: a processor, a connector, a continuous query.
    Internal,
}

/// One partition's batches in a multi-partition append.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    pub topic: String,
    pub partition: PartitionIndex,
    pub batches: Bytes,
}

/// One partition of a multi-partition read.
#[derive(Debug, Clone)]
pub struct FetchPartition {
    pub topic: String,
    pub partition: PartitionIndex,
    pub offset: Offset,
    /// Most bytes from this partition (the first batch of the read goes whole, KIP-74).
    pub max_bytes: usize,
}

/// What a read found in one partition: whole stored batches, the aborted transactions
/// among them (`read_committed` only), and the partition's offsets.
#[derive(Debug, Clone)]
pub struct PartitionRead {
    pub records: Batches,
    pub aborted_transactions: Vec<AbortedTransaction>,
    pub offsets: PartitionOffsets,
}

impl Engine {
    /// Appends a batch buffer (record batch v2, one or more) to a partition, with
    /// [`Acks::All`]: every batch is checked whole, offsets are assigned (in a copy of each
    /// 61-byte header: the buffer is written as it is, never copied or re-encoded), and the
    /// call returns once the batches are durable under the topic's flush policy. The high
    /// watermark moves and the partition's waiters wake. The buffer may be shared (a slice
    /// of a request frame).
    pub async fn append(
        &self,
        topic: &str,
        partition: PartitionIndex,
        batches: Bytes,
        origin: Origin,
    ) -> Result<Appended> {
        let request = AppendRequest {
            topic: topic.to_string(),
            partition,
            batches,
        };
        let mut results = self.append_all(vec![request], origin, Acks::All).await;
        results.pop().unwrap_or(Err(Error::ShuttingDown))
    }

    /// [`Engine::append`] for several partitions at once (a produce request's): the
    /// partitions' appends run concurrently, each in its storage (the local log's on the
    /// blocking pool, so a request's partitions use several cores). One result per request, in
    /// order; a refused partition does not stop the others. With [`Acks::All`] each append
    /// also waits for the partition's durability step.
    pub async fn append_all(
        &self,
        requests: Vec<AppendRequest>,
        origin: Origin,
        acks: Acks,
    ) -> Vec<Result<Appended>> {
        let now_ms = self.clock.now_ms();
        // A partition named twice keeps its appends in request order: one after the other.
        let mut named = std::collections::HashSet::with_capacity(requests.len());
        let concurrent = requests
            .iter()
            .all(|r| named.insert((r.topic.as_str(), r.partition)));
        let appends = requests.into_iter().map(|request| async move {
            let storage = self.writable(&request.topic, request.partition, origin)?;
            let mut open_transaction = None;
            if origin != Origin::Coordinator {
                let partition = (request.topic.clone(), request.partition);
                if let Some((producer_id, epoch)) = check_attributes(&request.batches)? {
                    let guard = self
                        .transactions
                        .begin_append(producer_id, epoch, &partition)
                        .await?;
                    open_transaction = Some(guard);
                }
            }
            let appended = storage.append(request.batches, now_ms).await?;
            drop(open_transaction);
            if acks == Acks::All {
                storage.make_durable(appended.last_offset).await?;
            }
            Ok(appended)
        });
        if concurrent {
            return join_all(appends.collect()).await;
        }
        let mut results = Vec::new();
        for append in appends {
            results.push(append.await);
        }
        results
    }

    /// The partition `origin` may append to.
    fn writable(
        &self,
        topic: &str,
        partition: PartitionIndex,
        origin: Origin,
    ) -> Result<Arc<dyn PartitionStorage>> {
        let topic = self.require_topic(topic)?;
        if topic.is_internal() && origin != Origin::Coordinator {
            return Err(Error::InternalTopicWrite {
                topic: topic.name.clone(),
            });
        }
        topic.partition(partition)
    }

    /// Reads several partitions in one pass, as a Kafka fetch does: from each partition's
    /// offset, whole batches up to its `max_bytes` and `max_bytes_total` overall, none past
    /// what `isolation` lets the reader see. The first partition with data gets its first
    /// batch whole however large (KIP-74); after it only whole batches within the budget.
    /// One result per partition, in order.
    ///
    /// When the partitions' limits together fit `max_bytes_total` (the usual fetch: many
    /// partitions of 1 MiB in 50 MiB), they are read at once, each as if it were the first,
    /// and then, in order, a read that the budget left by the ones before cannot hold is read
    /// again within it. Otherwise they are read one after another, so memory stays within
    /// the budget however many partitions a fetch names.
    pub async fn read(
        &self,
        partitions: Arc<[FetchPartition]>,
        max_bytes_total: usize,
        isolation: Isolation,
    ) -> Vec<Result<PartitionRead>> {
        let planned = partitions.iter().fold(0usize, |sum, p| {
            sum.saturating_add(p.max_bytes.min(max_bytes_total))
        });
        let mut optimistic = if planned <= max_bytes_total {
            let reads = partitions
                .iter()
                .map(|partition| self.read_one(partition, max_bytes_total, true, isolation));
            join_all(reads.collect()).await
        } else {
            Vec::new()
        }
        .into_iter();
        let mut budget = max_bytes_total;
        let mut read_bytes = 0usize;
        let mut results = Vec::with_capacity(partitions.len());
        for partition in partitions.iter() {
            let allowed = partition.max_bytes.min(budget);
            let first = read_bytes == 0;
            let read = match optimistic.next() {
                // The first with data, or a read the budget left still holds: as it is.
                Some(Ok(found)) if first || found.records.len() <= allowed => Ok(found),
                Some(Err(error)) => Err(error),
                _ => self.read_one(partition, budget, first, isolation).await,
            };
            if let Ok(read) = &read {
                read_bytes += read.records.len();
                budget = budget.saturating_sub(read.records.len());
            }
            results.push(read);
        }
        results
    }

    /// One partition of [`Engine::read`], within `budget` bytes. A partition with nothing
    /// new is answered from memory, so a fetch of many quiet partitions costs no disk work.
    async fn read_one(
        &self,
        partition: &FetchPartition,
        budget: usize,
        min_one_batch: bool,
        isolation: Isolation,
    ) -> Result<PartitionRead> {
        let storage = self
            .require_topic(&partition.topic)?
            .partition(partition.partition)?;
        let offsets = storage.offsets()?;
        let max_bytes = partition.max_bytes.min(budget);
        // Past the first partition with data, an exhausted budget means nothing to read.
        if partition.offset == offsets.visible_end(isolation) || (!min_one_batch && max_bytes == 0)
        {
            return Ok(PartitionRead {
                records: Batches::none(),
                aborted_transactions: Vec::new(),
                offsets,
            });
        }
        let range = ReadRange {
            offset: partition.offset,
            max_bytes,
            min_one_batch,
            isolation,
        };
        let read = storage.read(range).await?;
        Ok(PartitionRead {
            records: read.batches,
            aborted_transactions: read.aborted_transactions,
            offsets: storage.offsets()?,
        })
    }

    /// Watches the high watermarks of `partitions` (unknown ones are left out), so a reader
    /// can wait for data on exactly the partitions it reads.
    pub fn waiter(&self, partitions: impl IntoIterator<Item = (String, PartitionIndex)>) -> Waiter {
        let receivers = partitions
            .into_iter()
            .filter_map(|(topic, partition)| {
                let storage = self.topic(&topic)?.partition(partition).ok()?;
                let mut receiver = storage.watch_high_watermark();
                receiver.borrow_and_update();
                Some(receiver)
            })
            .collect();
        Waiter { receivers }
    }

    /// A partition's offsets (from memory: never waits for the disk).
    pub fn offsets(&self, topic: &str, partition: PartitionIndex) -> Result<PartitionOffsets> {
        self.require_topic(topic)?.partition(partition)?.offsets()
    }

    /// When the partition's last append landed (wall-clock ms), if any since start-up.
    pub fn last_append_ms(&self, topic: &str, partition: PartitionIndex) -> Result<Option<i64>> {
        Ok(self
            .require_topic(topic)?
            .partition(partition)?
            .last_append_ms())
    }

    /// The first record at or after `timestamp_ms` below the high watermark.
    pub async fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: PartitionIndex,
        timestamp_ms: i64,
    ) -> Result<Option<TimestampOffset>> {
        let storage = self.require_topic(topic)?.partition(partition)?;
        storage.offset_for_timestamp(timestamp_ms).await
    }

    /// The first record with the largest timestamp (ListOffsets `MAX_TIMESTAMP`).
    pub async fn offset_of_max_timestamp(
        &self,
        topic: &str,
        partition: PartitionIndex,
    ) -> Result<Option<TimestampOffset>> {
        let storage = self.require_topic(topic)?.partition(partition)?;
        storage.offset_of_max_timestamp().await
    }

    /// Moves the log start offset up to `offset` (DeleteRecords); returns the new one.
    pub async fn delete_records(
        &self,
        topic: &str,
        partition: PartitionIndex,
        offset: Offset,
    ) -> Result<Offset> {
        let storage = self.require_topic(topic)?.partition(partition)?;
        storage.delete_records(offset).await
    }
}

/// A client's batch may not carry the control bit, nor a producer id without a sequence
/// (what a coordinator writes on a producer's behalf). Returns the producer whose
/// transaction the batches belong to: one at most, so an append holds one transaction's
/// gate and two appends can never wait on each other's (a producer writes only its own
/// batches; from Produce v3 Kafka takes one batch per partition). Batches are walked by
/// their headers only; the storage checks the rest.
fn check_attributes(batches: &[u8]) -> Result<Option<(ProducerId, ProducerEpoch)>> {
    let mut transactional = None;
    for (batch_index, batch) in fjord_record::batches(batches).enumerate() {
        let Ok(batch) = batch else {
            break; // malformed: the storage's full check reports it
        };
        let header = batch.header;
        let refused = if header.attributes.is_control() {
            "control bit"
        } else if header.producer_id >= 0 && header.base_sequence < 0 {
            "producer id without a sequence"
        } else {
            if header.attributes.is_transactional() {
                let producer = (
                    ProducerId(header.producer_id),
                    ProducerEpoch(header.producer_epoch),
                );
                if *transactional.get_or_insert(producer) != producer {
                    return Err(Error::ForbiddenBatchAttribute {
                        batch_index,
                        attribute: "a second transactional producer or epoch in one append",
                    });
                }
            }
            continue;
        };
        return Err(Error::ForbiddenBatchAttribute {
            batch_index,
            attribute: refused,
        });
    }
    Ok(transactional)
}

/// High-watermark watches over a set of partitions, from [`Engine::waiter`].
#[derive(Debug)]
pub struct Waiter {
    receivers: Vec<watch::Receiver<Offset>>,
}

impl Waiter {
    /// Waits until a watched partition's high watermark moved since the last call (or since
    /// the waiter was made), or `deadline` passes. Returns whether something moved. A
    /// partition deleted meanwhile counts as moved, so the caller reads again and sees why.
    pub async fn changed(&mut self, deadline: tokio::time::Instant) -> bool {
        // A closed watch (its partition deleted) counts as one change, then is dropped:
        // otherwise it would be ready at every call and a long poll would spin.
        let watched = self.receivers.len();
        self.receivers.retain(|r| r.has_changed().is_ok());
        if self.receivers.len() != watched {
            return true;
        }
        let mut waits: Vec<Pin<Box<dyn Future<Output = _> + Send + '_>>> = self
            .receivers
            .iter_mut()
            .map(|r| Box::pin(r.changed()) as Pin<Box<dyn Future<Output = _> + Send + '_>>)
            .collect();
        let any = std::future::poll_fn(|cx| {
            if waits
                .iter_mut()
                .any(|wait| wait.as_mut().poll(cx).is_ready())
            {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        });
        tokio::time::timeout_at(deadline, any).await.is_ok()
    }
}
