//! Log compaction (`cleanup.policy=compact`): keep the latest record of every key.
//!
//! Compaction runs in three steps so appends never wait for it:
//! 1. [`Log::compaction_plan`] (`&self`, instant) picks the sealed segments to clean.
//! 2. [`CompactionPlan::run`] (no access to the log; run it on any thread) reads those
//!    immutable segments, maps each key to its latest offset, and writes cleaned copies,
//!    with their indexes, into a scratch directory inside the log directory.
//! 3. [`Log::install_compaction`] (`&mut self`, quick) swaps each cleaned copy in, if the
//!    segment it came from is still there unchanged (retention or truncation may have removed
//!    it meanwhile; then the copy is dropped).
//!
//! What is kept: every record that is the latest for its key among the cleaned segments,
//! records without a key, and transaction markers while they still matter. Offsets never
//! change: a rewritten batch keeps its base offset, last offset delta and record offset
//! deltas, only losing records. A tombstone (null value) that is the latest for its key is
//! dropped once its segment's newest timestamp is older than `delete.retention.ms`, giving
//! consumers that long to see it.
//!
//! Transactions, as Kafka's cleaner treats them: only segments wholly below the last stable
//! offset are cleaned, so an open transaction's records are never touched. Records of
//! aborted transactions (known from the `.txnindex` files) are removed, and never count as
//! the latest for their key. A COMMIT marker is dropped once no record of its transaction is
//! left and its segment is past `delete.retention.ms`, as a tombstone is. ABORT markers
//! stay, as do the `.txnindex` entries naming them: a `read_committed` reader told of an
//! aborted transaction skips its producer's batches until it meets that marker, so dropping
//! one would hide the producer's later committed records. (Kafka drops both together; a
//! marker is a few dozen bytes.)
//!
//! Swap order, crash-safe at every step: sync the cleaned files; delete the old segment's
//! index files and sync the directory; rename the cleaned log over the old log (atomic);
//! rename the cleaned indexes in; sync the directory. A crash leaves either the old log or
//! the new one, and at worst a missing index, which the next open rebuilds.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fjord_record::{ControlType, Records};

use crate::checkpoint::sync_dir;
use crate::limits::{COMPACTION_KEY_BYTES_MAX, DECOMPRESSED_BYTES_MAX, RECOVERY_CHUNK_BYTES};
use crate::pool::FilePool;
use crate::scan::{Scanner, Step};
use crate::segment::{INDEX_SUFFIX, LOG_SUFFIX, Segment, TIME_INDEX_SUFFIX, corrupt, file_path};
use crate::{Log, Result, error::io};

/// Scratch directory for cleaned segments, inside the log directory.
pub(crate) const SCRATCH_DIR: &str = "compaction.tmp";

/// The sealed segments one compaction round will clean.
#[derive(Debug)]
pub struct CompactionPlan {
    dir: PathBuf,
    pool: Arc<FilePool>,
    segments: Vec<Planned>,
    delete_retention_ms: i64,
    index_interval_bytes: u64,
    now_ms: i64,
    /// The offset after the last planned segment.
    end_offset: i64,
    aborted: AbortedRanges,
}

/// The aborted transactions with records below the plan's end, per producer: (first offset,
/// marker offset).
#[derive(Debug, Default)]
struct AbortedRanges(HashMap<i64, Vec<(i64, i64)>>);

impl AbortedRanges {
    /// Whether the transactional batch of `producer_id` at `offset` was aborted.
    fn contains(&self, producer_id: i64, offset: i64) -> bool {
        self.0.get(&producer_id).is_some_and(|ranges| {
            ranges
                .iter()
                .any(|(first, last)| (*first..=*last).contains(&offset))
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Planned {
    base_offset: i64,
    size_bytes: u64,
    max_timestamp: i64,
}

/// Cleaned copies waiting to be installed.
#[derive(Debug)]
pub struct Compacted {
    scratch: PathBuf,
    now_ms: i64,
    end_offset: i64,
    cleaned: Vec<Cleaned>,
    records_removed: u64,
}

#[derive(Debug, Clone, Copy)]
struct Cleaned {
    base_offset: i64,
    original_size_bytes: u64,
}

/// What a compaction round changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CompactionOutcome {
    pub segments_cleaned: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub records_removed: u64,
    /// Below this offset the log is clean: every batch there is as this round left it.
    pub cleaned_end_offset: i64,
}

impl Log {
    /// The next compaction round, or `None` when the policy is not `compact` or there is no
    /// sealed segment yet.
    pub fn compaction_plan(&self, now_ms: i64) -> Option<CompactionPlan> {
        if !self.config.cleanup_policy.compact {
            return None;
        }
        let (cleanable, end_offset) = self.cleanable();
        if cleanable.is_empty() {
            return None;
        }
        let mut aborted = AbortedRanges::default();
        for entry in self.segments.values().flat_map(|s| s.aborted()) {
            if entry.first_offset < end_offset {
                let ranges = aborted.0.entry(entry.producer_id).or_default();
                ranges.push((entry.first_offset, entry.last_offset));
            }
        }
        Some(CompactionPlan {
            dir: self.dir.clone(),
            pool: Arc::clone(&self.pool),
            segments: cleanable
                .iter()
                .map(|s| Planned {
                    base_offset: s.base_offset,
                    size_bytes: s.size_bytes,
                    max_timestamp: s.max_timestamp,
                })
                .collect(),
            delete_retention_ms: self.config.delete_retention_ms,
            index_interval_bytes: self.config.index_interval_bytes,
            now_ms,
            end_offset,
            aborted,
        })
    }

    /// The segments compaction may clean: sealed, and ending at or below the last stable
    /// offset (an open transaction's records are never cleaned); and the offset after them.
    fn cleanable(&self) -> (Vec<&Segment>, i64) {
        let last_stable_offset = self.last_stable_offset();
        let mut cleanable = Vec::new();
        let mut end_offset = self.log_start_offset;
        let next_bases = self.segments.keys().skip(1);
        for (segment, next_base) in self.segments.values().zip(next_bases) {
            if *next_base > last_stable_offset {
                break;
            }
            cleanable.push(segment);
            end_offset = *next_base;
        }
        (cleanable, end_offset)
    }

    /// Whether a compaction round is due, by Kafka's rules: the policy is `compact`, some
    /// cleanable segment is dirty (written since the last round) and has no record newer than
    /// `min.compaction.lag.ms`, and either the dirty share of the sealed bytes reaches
    /// `min.cleanable.dirty.ratio` or the oldest dirty segment's newest record is older than
    /// `max.compaction.lag.ms`. [`Log::compact`] and [`Log::compaction_plan`] do not ask.
    pub fn compaction_due(&self, now_ms: i64) -> bool {
        if !self.config.cleanup_policy.compact {
            return false;
        }
        let (cleanable, _) = self.cleanable();
        let sealed = || cleanable.iter();
        let mut dirty = sealed().filter(|s| {
            s.base_offset >= self.cleaned_up_to
                && now_ms.saturating_sub(s.max_timestamp) >= self.config.min_compaction_lag_ms
        });
        let Some(oldest) = dirty.next() else {
            return false;
        };
        let dirty_bytes = oldest.size_bytes + dirty.map(|s| s.size_bytes).sum::<u64>();
        // The share is of the cleanable bytes, as Kafka's is of the bytes below its first
        // uncleanable offset.
        let total_bytes: u64 = sealed().map(|s| s.size_bytes).sum();
        let ratio = dirty_bytes as f64 / total_bytes.max(1) as f64;
        ratio >= self.config.min_cleanable_dirty_ratio
            || now_ms.saturating_sub(oldest.max_timestamp) >= self.config.max_compaction_lag_ms
    }

    /// Plans, runs and installs one round on this thread.
    pub fn compact(&mut self, now_ms: i64) -> Result<CompactionOutcome> {
        match self.compaction_plan(now_ms) {
            Some(plan) => {
                let compacted = plan.run()?;
                self.install_compaction(compacted)
            }
            None => Ok(CompactionOutcome::default()),
        }
    }

    /// Swaps cleaned segments in (see the module docs for the order of steps).
    pub fn install_compaction(&mut self, compacted: Compacted) -> Result<CompactionOutcome> {
        let mut outcome = CompactionOutcome {
            records_removed: compacted.records_removed,
            cleaned_end_offset: compacted.end_offset,
            ..Default::default()
        };
        let active_base = self.active().base_offset;
        let (dir, pool) = (self.dir.clone(), Arc::clone(&self.pool));
        for cleaned in &compacted.cleaned {
            let base = cleaned.base_offset;
            let unchanged = self
                .segments
                .get(&base)
                .is_some_and(|s| s.size_bytes == cleaned.original_size_bytes);
            if base == active_base || !unchanged {
                continue;
            }
            if let Some(old) = self.segments.get(&base) {
                old.forget_files(&pool);
            }
            for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                let path = file_path(&dir, base, suffix);
                std::fs::remove_file(&path).map_err(io(&path))?;
            }
            sync_dir(&dir)?;
            for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                let (from, to) = (
                    file_path(&compacted.scratch, base, suffix),
                    file_path(&dir, base, suffix),
                );
                std::fs::rename(&from, &to).map_err(io(&to))?;
            }
            sync_dir(&dir)?;
            let (segment, _) = Segment::open(
                &dir,
                &pool,
                base,
                self.config.index_interval_bytes,
                compacted.now_ms,
            )?;
            outcome.segments_cleaned += 1;
            outcome.bytes_before += cleaned.original_size_bytes;
            outcome.bytes_after += segment.size_bytes;
            self.segments.insert(base, segment);
        }
        std::fs::remove_dir_all(&compacted.scratch).map_err(io(&compacted.scratch))?;
        self.cleaned_up_to = self.cleaned_up_to.max(compacted.end_offset);
        Ok(outcome)
    }
}

impl CompactionPlan {
    /// Reads the planned segments and writes their cleaned copies. Touches only immutable
    /// files and the scratch directory, so the log stays free for appends meanwhile.
    pub fn run(self) -> Result<Compacted> {
        let scratch = self.dir.join(SCRATCH_DIR);
        if scratch.exists() {
            std::fs::remove_dir_all(&scratch).map_err(io(&scratch))?;
        }
        std::fs::create_dir(&scratch).map_err(io(&scratch))?;
        let (latest, mapped) = self.map_keys()?;
        let mut cleaned = Vec::new();
        let mut records_removed = 0;
        let mut transactions = HashMap::new();
        for planned in &self.segments[..mapped] {
            records_removed += self.clean_segment(planned, &latest, &mut transactions, &scratch)?;
            cleaned.push(Cleaned {
                base_offset: planned.base_offset,
                original_size_bytes: planned.size_bytes,
            });
        }
        sync_dir(&scratch)?;
        // Segments past the key map's memory limit were not cleaned: they stay dirty.
        let end_offset = self
            .segments
            .get(mapped)
            .map_or(self.end_offset, |next| next.base_offset);
        Ok(Compacted {
            scratch,
            now_ms: self.now_ms,
            end_offset,
            cleaned,
            records_removed,
        })
    }

    /// Maps each key to its latest offset. Stops before the segment that would take the map
    /// past its memory limit; returns how many segments it covered.
    fn map_keys(&self) -> Result<(HashMap<Vec<u8>, i64>, usize)> {
        let mut latest: HashMap<Vec<u8>, i64> = HashMap::new();
        let mut key_bytes = 0usize;
        for (i, planned) in self.segments.iter().enumerate() {
            let mut segment_keys = Vec::new();
            self.for_each_batch(planned, |batch| {
                let header = &batch.header;
                let aborted = header.attributes.is_transactional()
                    && self
                        .aborted
                        .contains(header.producer_id, header.base_offset);
                if header.attributes.is_control() || aborted {
                    return Ok(());
                }
                let records = batch
                    .decompressed_record_bytes(DECOMPRESSED_BYTES_MAX)
                    .map_err(|e| e.to_string())?;
                for record in Records::new(&records) {
                    let record = record.map_err(|e| e.to_string())?;
                    if let Some(key) = record.key {
                        segment_keys.push((
                            key.to_vec(),
                            batch.header.base_offset + i64::from(record.offset_delta),
                        ));
                    }
                }
                Ok(())
            })?;
            let added: usize = segment_keys.iter().map(|(k, _)| k.len() + 64).sum();
            if key_bytes + added > COMPACTION_KEY_BYTES_MAX && i > 0 {
                return Ok((latest, i));
            }
            key_bytes += added;
            latest.extend(segment_keys);
        }
        Ok((latest, self.segments.len()))
    }

    /// Writes the cleaned copy of one segment into `scratch`; returns records removed.
    /// `transactions` carries, from segment to segment, whether each producer's current
    /// transaction has a record kept so far.
    fn clean_segment(
        &self,
        planned: &Planned,
        latest: &HashMap<Vec<u8>, i64>,
        transactions: &mut HashMap<i64, bool>,
        scratch: &Path,
    ) -> Result<u64> {
        let mut output = Segment::create(scratch, &self.pool, planned.base_offset, self.now_ms)?;
        let past_horizon =
            planned.max_timestamp < self.now_ms.saturating_sub(self.delete_retention_ms);
        let mut removed = 0u64;
        let mut write_error = None;
        self.for_each_batch(planned, |batch| {
            let kept = self
                .verdict(&batch, latest, past_horizon, transactions)
                .map_err(|e| e.to_string())?;
            removed += kept.removed;
            let bytes = match kept.rewritten {
                Kept::All => batch.bytes.to_vec(),
                Kept::None => return Ok(()),
                Kept::Some(bytes) => bytes,
            };
            if let Err(e) =
                output.append_bytes(scratch, &self.pool, &bytes, self.index_interval_bytes)
            {
                write_error = Some(e);
                return Err("writing the cleaned segment failed".into());
            }
            Ok(())
        })
        .map_err(|e| write_error.take().unwrap_or(e))?;
        output.seal(scratch, &self.pool)?;
        output.forget_files(&self.pool);
        Ok(removed)
    }

    /// What becomes of one batch: markers and aborted batches by the transaction rules (see
    /// the module docs), other batches by [`keep`].
    fn verdict(
        &self,
        batch: &fjord_record::Batch<'_>,
        latest: &HashMap<Vec<u8>, i64>,
        past_horizon: bool,
        transactions: &mut HashMap<i64, bool>,
    ) -> fjord_record::Result<Verdict> {
        let header = &batch.header;
        if header.attributes.is_control() {
            let has_records = transactions.remove(&header.producer_id).unwrap_or(false);
            // An ABORT marker stays: its `.txnindex` entry stays too, and a reader told of
            // an aborted transaction skips that producer's batches until it meets the marker.
            let commit = ControlType::of_batch(batch, DECOMPRESSED_BYTES_MAX)?
                .is_some_and(|kind| kind == ControlType::Commit);
            let drop = commit && !has_records && past_horizon;
            return Ok(Verdict {
                rewritten: if drop { Kept::None } else { Kept::All },
                removed: u64::from(drop),
            });
        }
        if !header.attributes.is_transactional() {
            return keep(batch, latest, past_horizon);
        }
        if self
            .aborted
            .contains(header.producer_id, header.base_offset)
        {
            transactions.entry(header.producer_id).or_insert(false);
            return Ok(Verdict {
                rewritten: Kept::None,
                removed: u64::try_from(header.records_count).unwrap_or(0),
            });
        }
        let verdict = keep(batch, latest, past_horizon)?;
        let has_records = transactions.entry(header.producer_id).or_insert(false);
        *has_records |= !matches!(verdict.rewritten, Kept::None);
        Ok(verdict)
    }

    /// Calls `f` on every batch of a planned segment, CRC checked.
    fn for_each_batch(
        &self,
        planned: &Planned,
        mut f: impl FnMut(fjord_record::Batch<'_>) -> Result<(), String>,
    ) -> Result<()> {
        let path = file_path(&self.dir, planned.base_offset, LOG_SUFFIX);
        let file = File::open(&path).map_err(io(&path))?;
        let mut scanner = Scanner::new(
            &file,
            &path,
            0..planned.size_bytes,
            true,
            RECOVERY_CHUNK_BYTES,
        );
        loop {
            let scanned = match scanner.next()? {
                Step::Batch(scanned) => scanned,
                Step::End => return Ok(()),
                Step::Invalid { position, reason } => return Err(corrupt(&path, position, reason)),
            };
            let bytes = scanner
                .bytes(&scanned)
                .ok_or_else(|| corrupt(&path, scanned.position, "batch not in buffer".into()))?;
            let batch = fjord_record::batches(bytes)
                .next()
                .and_then(|b| b.ok())
                .ok_or_else(|| corrupt(&path, scanned.position, "batch does not parse".into()))?;
            f(batch).map_err(|reason| corrupt(&path, scanned.position, reason))?;
        }
    }
}

enum Kept {
    All,
    None,
    Some(Vec<u8>),
}

struct Verdict {
    rewritten: Kept,
    removed: u64,
}

/// A data batch's records that stay: the latest of their key, and tombstones until
/// `drop_tombstones`.
fn keep(
    batch: &fjord_record::Batch<'_>,
    latest: &HashMap<Vec<u8>, i64>,
    drop_tombstones: bool,
) -> fjord_record::Result<Verdict> {
    let records = batch.decompressed_record_bytes(DECOMPRESSED_BYTES_MAX)?;
    let mut kept = Vec::new();
    let mut total = 0u64;
    for record in Records::new(&records) {
        let record = record?;
        total += 1;
        let offset = batch.header.base_offset + i64::from(record.offset_delta);
        let is_latest = record
            .key
            .is_none_or(|key| latest.get(key).is_none_or(|&l| l == offset));
        let expired_tombstone = record.value.is_none() && drop_tombstones;
        if is_latest && !expired_tombstone {
            kept.push(record.raw);
        }
    }
    let removed = total - kept.len() as u64;
    let rewritten = if removed == 0 {
        Kept::All
    } else if kept.is_empty() {
        Kept::None
    } else {
        Kept::Some(fjord_record::rebuild(
            &batch.header,
            kept,
            batch.compression()?,
        )?)
    };
    Ok(Verdict { rewritten, removed })
}
