//! [`Log`]: one partition's ordered segments, offsets and durability.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fjord_record::{HEADER_BYTES, TimestampType};

use crate::checkpoint::{Checkpoint, sync_dir};
use crate::epoch::{EpochEntry, LeaderEpochCache};
use crate::error::{invalid_batch, io};
use crate::pool::FilePool;
use crate::segment::{LOG_SUFFIX, Segment, TimestampOffset};
use crate::{Error, FlushPolicy, Result, TopicConfig};
use fjord_partition::{CheckedBatch, ProducerStates, check_batches, convert_batches};

mod read;

pub use read::Fetched;

/// What an append wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The log-append time stamped on the batches, or -1 under `CreateTime`.
    pub log_append_time_ms: i64,
    pub records_count: i64,
    /// The batch was a producer's retry of one already in the log: nothing was written and
    /// the offsets are the original's.
    pub duplicate: bool,
}

/// How to treat the data on disk when opening a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// The store shut down cleanly: trust the segments (indexes are still checked).
    Trusted,
    /// After a crash: check every batch past the recovery point and cut a torn tail.
    Full,
}

/// What opening a log found and repaired.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// Segments scanned batch by batch.
    pub recovered_segments: usize,
    /// Where invalid data was cut off, and why.
    pub truncated: Option<(PathBuf, u64, String)>,
    /// Segments removed: behind the log start offset, or after a truncation.
    pub deleted_segments: usize,
}

/// One partition's log. Methods that change it take `&mut self`; reads take `&self`, so the
/// owner chooses the locking (the broker wraps each log in a lock of its own).
#[derive(Debug)]
pub struct Log {
    pub(crate) dir: PathBuf,
    pub(crate) config: TopicConfig,
    pub(crate) pool: Arc<FilePool>,
    /// Keyed by base offset. Never empty: the last one is the active segment.
    pub(crate) segments: BTreeMap<i64, Segment>,
    pub(crate) log_start_offset: i64,
    high_watermark: i64,
    pub(crate) recovery_point: i64,
    epochs: LeaderEpochCache,
    /// When the oldest unsynced append happened, for `FlushPolicy::IntervalMs`.
    first_unflushed_ms: Option<i64>,
    pub(crate) producers: ProducerStates,
    /// The producer state changed since `producer.snapshot` was written.
    pub(crate) producers_dirty: bool,
    /// Sealed segments below this offset were compacted since the log opened; the ones from
    /// here on are dirty (see [`Log::compaction_due`]). Not persisted: after a restart every
    /// sealed segment counts as dirty once.
    pub(crate) cleaned_up_to: i64,
}

impl Log {
    /// Creates an empty log in `dir`, which must not hold one already.
    pub fn create(
        dir: &Path,
        config: TopicConfig,
        pool: Arc<FilePool>,
        now_ms: i64,
    ) -> Result<Self> {
        config.validate()?;
        if dir.join(crate::checkpoint::CHECKPOINT_FILE).exists() {
            return Err(Error::AlreadyExists {
                path: dir.to_path_buf(),
            });
        }
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let segment = Segment::create(dir, &pool, 0, now_ms)?;
        let log = Self {
            dir: dir.to_path_buf(),
            config,
            pool,
            segments: BTreeMap::from([(0, segment)]),
            log_start_offset: 0,
            high_watermark: 0,
            recovery_point: 0,
            epochs: LeaderEpochCache::default(),
            first_unflushed_ms: None,
            producers: ProducerStates::default(),
            producers_dirty: false,
            cleaned_up_to: 0,
        };
        log.write_checkpoint()?;
        if let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
        Ok(log)
    }

    /// Opens the log in `dir`, recovering it as `recovery` says.
    pub fn open(
        dir: &Path,
        config: TopicConfig,
        pool: Arc<FilePool>,
        recovery: Recovery,
        now_ms: i64,
    ) -> Result<(Self, OpenReport)> {
        config.validate()?;
        remove_leftovers(dir)?;
        let bases = segment_bases(dir)?;
        let checkpoint = Checkpoint::read(dir)?;
        if bases.is_empty() && checkpoint.is_none() {
            return Err(Error::NotALog {
                path: dir.to_path_buf(),
                reason: "no segments and no checkpoint",
            });
        }
        let mut log = Self {
            dir: dir.to_path_buf(),
            config,
            pool,
            segments: BTreeMap::new(),
            log_start_offset: checkpoint.map_or(0, |c| c.log_start_offset),
            high_watermark: checkpoint.map_or(0, |c| c.high_watermark),
            recovery_point: match recovery {
                Recovery::Trusted => i64::MAX,
                Recovery::Full => checkpoint.map_or(0, |c| c.recovery_point),
            },
            epochs: LeaderEpochCache::load(dir)?,
            first_unflushed_ms: None,
            producers: ProducerStates::default(),
            producers_dirty: false,
            cleaned_up_to: 0,
        };
        let (report, epochs_recovered) = log.load_segments(&bases, now_ms)?;
        // Nothing cut or removed, no epoch learnt: what is on disk may already be the state.
        let untouched = report.truncated.is_none() && report.deleted_segments == 0;
        let stored = checkpoint.filter(|_| untouched && !epochs_recovered);
        log.finish_open(recovery, epochs_recovered, stored)?;
        log.load_producers(recovery)?;
        Ok((log, report))
    }

    /// Loads every segment, recovering those past the recovery point; also says whether
    /// recovery learnt leader epochs the epoch cache lacked.
    fn load_segments(&mut self, bases: &[i64], now_ms: i64) -> Result<(OpenReport, bool)> {
        let mut report = OpenReport::default();
        let mut epochs_recovered = false;
        let dir = self.dir.clone();
        for (i, &base) in bases.iter().enumerate() {
            let next_base = bases.get(i + 1).copied();
            if report.truncated.is_some()
                || next_base.is_some_and(|next| next <= self.log_start_offset)
            {
                Segment::delete_files(&dir, base)?;
                report.deleted_segments += 1;
                continue;
            }
            let trusted = next_base.is_some_and(|next| next <= self.recovery_point)
                || (self.recovery_point == i64::MAX);
            let interval = self.config.index_interval_bytes;
            let (segment, recovered) = if trusted {
                Segment::open(&dir, &self.pool, base, interval, now_ms)?
            } else {
                let mut segment = Segment::open_for_recovery(&dir, &self.pool, base, now_ms)?;
                let epochs = &mut self.epochs;
                let recovered =
                    segment.recover(&dir, &self.pool, interval, &mut |epoch, offset| {
                        epochs_recovered |= epochs.assign(epoch, offset);
                    })?;
                (segment, Some(recovered))
            };
            if let Some(previous) = self.segments.values().next_back()
                && segment.base_offset < previous.next_offset
            {
                return Err(crate::segment::corrupt(
                    &crate::segment::file_path(&dir, base, LOG_SUFFIX),
                    0,
                    format!(
                        "segment starts at offset {base}, inside the previous segment (which ends at {})",
                        previous.next_offset
                    ),
                ));
            }
            if let Some(recovered) = recovered {
                report.recovered_segments += 1;
                if let Some((position, reason)) = recovered.truncated {
                    report.truncated = Some((
                        crate::segment::file_path(&dir, base, LOG_SUFFIX),
                        position,
                        reason,
                    ));
                }
            }
            self.segments.insert(base, segment);
        }
        if self.segments.is_empty() {
            let base = self.log_start_offset.max(0);
            self.segments
                .insert(base, Segment::create(&dir, &self.pool, base, now_ms)?);
        }
        Ok((report, epochs_recovered))
    }

    /// Settles offsets after loading: clamps them to the data found, syncs what recovery
    /// kept, and records the new state. When the state is the checkpoint already on disk
    /// (`stored`: read at open, recovery changed nothing), nothing is written or synced: a
    /// log that was synced up to its end needs no second sync, so thousands of idle
    /// partitions reopen after a crash without thousands of syncs.
    fn finish_open(
        &mut self,
        recovery: Recovery,
        epochs_recovered: bool,
        stored: Option<Checkpoint>,
    ) -> Result<()> {
        let log_end_offset = self.log_end_offset();
        let first_base = self.segments.keys().next().copied().unwrap_or(0);
        self.log_start_offset = self.log_start_offset.clamp(first_base, log_end_offset);
        self.high_watermark = self
            .high_watermark
            .clamp(self.log_start_offset, log_end_offset);
        if self.epochs.truncate_from(log_end_offset) || epochs_recovered {
            self.epochs.persist(&self.dir)?;
        }
        self.recovery_point = log_end_offset;
        if stored == Some(self.checkpoint()) {
            return Ok(());
        }
        if recovery == Recovery::Full {
            self.active().flush(&self.dir, &self.pool)?;
        }
        self.write_checkpoint()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &TopicConfig {
        &self.config
    }

    /// Replaces the config; takes effect from the next append, roll, retention or compaction.
    pub fn set_config(&mut self, config: TopicConfig) -> Result<()> {
        config.validate()?;
        self.config = config;
        Ok(())
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// The offset the next record will get.
    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset
    }

    /// The offset below which records are committed and visible to consumers. The owner
    /// advances it (for a single replica: to the log end offset once an append is durable
    /// under its `acks`); the log only keeps it within `log_start_offset..=log_end_offset`.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    pub fn set_high_watermark(&mut self, offset: i64) {
        self.high_watermark = offset.clamp(self.log_start_offset, self.log_end_offset());
    }

    /// Offsets below this are synced to disk.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size_bytes).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments.keys().copied().collect()
    }

    pub fn leader_epochs(&self) -> &[EpochEntry] {
        self.epochs.entries()
    }

    /// OffsetsForLeaderEpoch: the largest epoch at most `leader_epoch` and its end offset.
    pub fn end_offset_for_epoch(&self, leader_epoch: i32) -> Option<(i32, i64)> {
        self.epochs
            .end_offset_for(leader_epoch, self.log_end_offset())
    }

    pub(crate) fn active(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("a log always has an active segment")
    }

    pub(crate) fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has an active segment")
    }

    /// Checks a producer's batches with the shared rules (`fjord_partition::check_batches`).
    fn check(&self, batches: &[u8], now_ms: i64) -> Result<Vec<CheckedBatch>> {
        let partition = self
            .dir
            .file_name()
            .map(|name| name.to_string_lossy())
            .unwrap_or_default();
        Ok(check_batches(batches, &self.config, &partition, now_ms)?)
    }

    /// Appends producer batches: checks each one whole (length, CRC, every record), assigns
    /// offsets from the log end offset and the leader epoch (and log-append time if the
    /// topic uses it), writes them, and syncs as the flush policy says. Nothing is written if
    /// any batch is invalid.
    ///
    /// `batches` is never changed or copied: the fields the log owns all sit in each batch's
    /// 61-byte header, so the log writes a changed copy of each header and the producer's
    /// bytes after it, in one vectored write.
    pub fn append(&mut self, batches: &[u8], leader_epoch: i32, now_ms: i64) -> Result<AppendInfo> {
        if let Some(latest) = self.epochs.latest()
            && leader_epoch < latest.leader_epoch
        {
            return Err(Error::StaleLeaderEpoch {
                leader_epoch,
                latest_epoch: latest.leader_epoch,
            });
        }
        let spans = self.check(batches, now_ms)?;
        if let Some(original) = self.find_duplicate(&spans)? {
            return Ok(AppendInfo {
                base_offset: original.base_offset,
                last_offset: original.last_offset,
                log_append_time_ms: -1,
                records_count: 0,
                duplicate: true,
            });
        }
        let converted: Vec<u8>;
        let (batches, spans) = match convert_batches(batches, &spans, &self.config)? {
            Some(bytes) => {
                converted = bytes;
                let spans = self.check(&converted, now_ms)?;
                (&converted[..], spans)
            }
            None => (batches, spans),
        };
        let records_count: i64 = spans.iter().map(|s| s.offsets_count).sum();
        let base_offset = self.log_end_offset();
        self.maybe_roll(
            batches.len() as u64,
            base_offset + records_count - 1,
            now_ms,
        )?;
        let log_append_time_ms = match self.config.message_timestamp_type {
            TimestampType::LogAppendTime => now_ms,
            TimestampType::CreateTime => -1,
        };
        let mut next_offset = base_offset;
        let mut headers = Vec::with_capacity(spans.len());
        for span in &spans {
            let batch = &batches[span.position..span.position + span.size_bytes];
            let (header, records) = batch.split_at(HEADER_BYTES);
            let mut header: [u8; HEADER_BYTES] = header.try_into().map_err(|_| {
                invalid_batch(fjord_record::Error::Truncated {
                    position: span.position,
                    needed_bytes: HEADER_BYTES,
                    available_bytes: batch.len(),
                })
            })?;
            fjord_record::assign(&mut header, next_offset, leader_epoch).map_err(invalid_batch)?;
            if log_append_time_ms >= 0 {
                fjord_record::set_log_append_time_split(&mut header, records, log_append_time_ms)
                    .map_err(invalid_batch)?;
            }
            headers.push(header);
            next_offset += span.offsets_count;
        }
        if self.epochs.assign(leader_epoch, base_offset) {
            self.epochs.persist(&self.dir)?;
        }
        let (dir, interval) = (self.dir.clone(), self.config.index_interval_bytes);
        let pool = Arc::clone(&self.pool);
        let parts: Vec<(&[u8], &[u8])> = spans
            .iter()
            .zip(&headers)
            .map(|(span, header)| {
                let records =
                    &batches[span.position + HEADER_BYTES..span.position + span.size_bytes];
                (&header[..], records)
            })
            .collect();
        self.active_mut().append(&dir, &pool, &parts, interval)?;
        self.record_producers(batches, &spans, base_offset)?;
        self.after_append(now_ms)?;
        Ok(AppendInfo {
            base_offset,
            last_offset: next_offset - 1,
            log_append_time_ms,
            records_count,
            duplicate: false,
        })
    }

    fn after_append(&mut self, now_ms: i64) -> Result<()> {
        match self.config.flush {
            FlushPolicy::EveryBatch => self.flush(),
            FlushPolicy::IntervalMs(_) => {
                self.first_unflushed_ms.get_or_insert(now_ms);
                self.flush_if_due(now_ms)
            }
            FlushPolicy::Os => Ok(()),
        }
    }

    /// Syncs the active segment if the `IntervalMs` flush policy says it is time.
    pub fn flush_if_due(&mut self, now_ms: i64) -> Result<()> {
        if self.flush_due_ms().is_some_and(|due| now_ms >= due) {
            self.flush()?;
        }
        Ok(())
    }

    /// When [`Log::flush_if_due`] will next sync: under the `IntervalMs` policy, `flush.ms`
    /// after the oldest write not yet synced; `None` when nothing waits for one.
    pub fn flush_due_ms(&self) -> Option<i64> {
        match (self.config.flush, self.first_unflushed_ms) {
            (FlushPolicy::IntervalMs(interval), Some(since)) => {
                Some(since.saturating_add(i64::try_from(interval).unwrap_or(i64::MAX)))
            }
            _ => None,
        }
    }

    /// Syncs everything appended so far to disk (`fdatasync` of the active segment; sealed
    /// segments were synced when they rolled).
    pub fn flush(&mut self) -> Result<()> {
        if self.recovery_point < self.log_end_offset() {
            let Self { dir, segments, .. } = self;
            if let Some(active) = segments.values_mut().next_back() {
                active.sync_aborted(dir)?;
            }
            self.active().flush(&self.dir, &self.pool)?;
            self.recovery_point = self.log_end_offset();
        }
        self.first_unflushed_ms = None;
        Ok(())
    }

    fn maybe_roll(&mut self, append_bytes: u64, last_offset: i64, now_ms: i64) -> Result<()> {
        let active = self.active();
        let full = active.size_bytes + append_bytes > self.config.segment_bytes;
        let old = now_ms.saturating_sub(active.rolling_ms) >= self.config.segment_ms;
        let offsets_exhausted = last_offset - active.base_offset > i64::from(i32::MAX);
        if active.size_bytes > 0 && (full || old || offsets_exhausted) {
            self.roll(now_ms)?;
        }
        Ok(())
    }

    /// Seals the active segment (indexes written, everything synced) and starts a new one at
    /// the log end offset. The recovery point moves to the new segment's base.
    pub fn roll(&mut self, now_ms: i64) -> Result<()> {
        let base_offset = self.log_end_offset();
        if self.active().size_bytes == 0 {
            return Ok(());
        }
        let (dir, pool) = (self.dir.clone(), Arc::clone(&self.pool));
        self.active_mut().seal(&dir, &pool)?;
        let segment = Segment::create(&dir, &pool, base_offset, now_ms)?;
        self.segments.insert(base_offset, segment);
        sync_dir(&dir)?;
        self.producers.expire(now_ms);
        self.snapshot_producers()?;
        self.recovery_point = base_offset;
        self.first_unflushed_ms = None;
        self.write_checkpoint()
    }

    /// ListOffsets by time: the first record at or after `timestamp_ms` (at or after the log
    /// start offset), or `None` if every record is older.
    pub fn offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<TimestampOffset>> {
        for segment in self.segments.values() {
            if segment.next_offset <= self.log_start_offset || segment.max_timestamp < timestamp_ms
            {
                continue;
            }
            if let Some(found) = segment.offset_for_timestamp(
                &self.dir,
                &self.pool,
                timestamp_ms,
                self.log_start_offset,
            )? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The record with the largest timestamp (ListOffsets `MAX_TIMESTAMP`, KIP-734): the
    /// first record carrying the largest timestamp any segment holds.
    pub fn offset_of_max_timestamp(&self) -> Result<Option<TimestampOffset>> {
        let max_timestamp = self
            .segments
            .values()
            .filter(|s| s.next_offset > self.log_start_offset)
            .map(|s| s.max_timestamp)
            .max()
            .filter(|t| *t >= 0);
        match max_timestamp {
            Some(timestamp) => self.offset_for_timestamp(timestamp),
            None => Ok(None),
        }
    }

    /// Syncs everything and records the offsets, for a clean shutdown.
    pub fn close(mut self) -> Result<()> {
        let (dir, pool) = (self.dir.clone(), Arc::clone(&self.pool));
        self.active_mut().sync_indexes(&dir, &pool)?;
        self.flush()?;
        self.snapshot_producers()?;
        self.write_checkpoint()?;
        self.release_files();
        Ok(())
    }

    /// Closes this log's files in the pool.
    pub(crate) fn release_files(&self) {
        for segment in self.segments.values() {
            segment.forget_files(&self.pool);
        }
    }

    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            log_start_offset: self.log_start_offset,
            recovery_point: self.recovery_point.min(self.log_end_offset()),
            high_watermark: self.high_watermark,
        }
    }

    pub(crate) fn write_checkpoint(&self) -> Result<()> {
        self.checkpoint().write(&self.dir)
    }

    pub(crate) fn truncate_epochs(&mut self) -> Result<()> {
        if self.epochs.truncate_from(self.log_end_offset()) {
            self.epochs.persist(&self.dir)?;
        }
        Ok(())
    }

    pub(crate) fn clamp_high_watermark(&mut self) {
        self.set_high_watermark(self.high_watermark);
    }
}

/// Base offsets of the `.log` files in `dir`, ascending.
fn segment_bases(dir: &Path) -> Result<Vec<i64>> {
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let name = entry.map_err(io(dir))?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(".log")
            && stem.len() == 20
            && let Ok(base) = stem.parse::<i64>()
        {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// Deletes files an interrupted operation left behind: `*.tmp` (checkpoints) and `*.cleaned`
/// (compaction output not yet swapped in).
fn remove_leftovers(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        let leftover = path
            .extension()
            .is_some_and(|e| e == "tmp" || e == "cleaned");
        if leftover {
            tracing::info!(path = %path.display(), "removing leftover of an interrupted operation");
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(io(&path))?;
        }
    }
    Ok(())
}
