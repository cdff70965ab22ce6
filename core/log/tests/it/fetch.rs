//! `Log::fetch`: the consumer read that hands out file ranges.

use fjord_log::{Fetched, Log, Recovery, TopicConfig};
use fjord_partition::Offset;
use fjord_record::batches;

use crate::support::{filler, new_log, pool, small_config};

fn bytes_of(fetched: &Fetched) -> anyhow::Result<Vec<u8>> {
    Ok(match fetched {
        Fetched::Slice(slice) => slice.read_to_vec()?,
        Fetched::Copied(bytes) => bytes.to_vec(),
    })
}

/// A log of batches of 1 to 6 records with 40-byte values, over segments of `segment_bytes`.
fn filled_log(dir: &std::path::Path, config: TopicConfig) -> anyhow::Result<Log> {
    let mut log = new_log(dir, config)?;
    for i in 0..60 {
        let batch = filler(1 + i % 6, 40, 0);
        log.append(&batch, 0, 0)?;
    }
    Ok(log)
}

/// The batches `fetch` gives must be whole, start with the batch holding the offset, and be a
/// prefix of what `read` gives for the same limit.
#[test]
fn fetch_gives_a_prefix_of_whole_batches_of_what_read_gives() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let log = filled_log(dir.path(), small_config())?;
    let log_end_offset = log.log_end_offset();
    let mut slices = 0;
    for offset in 0..log_end_offset {
        for max_bytes in [1, 100, 300, 1000, 5000] {
            let read = log.read(offset, max_bytes, i64::MAX)?;
            for min_one_batch in [true, false] {
                let fetched = log.fetch(offset, max_bytes, i64::MAX, min_one_batch)?;
                slices += usize::from(matches!(fetched, Fetched::Slice(_)));
                let bytes = bytes_of(&fetched)?;
                assert_eq!(bytes.len(), fetched.len());
                assert_eq!(&read[..bytes.len()], &bytes[..], "offset {offset}");
                let batch_lengths: Vec<usize> = batches(&bytes)
                    .map(|b| b.map(|b| b.bytes.len()))
                    .collect::<Result<_, _>>()?;
                assert_eq!(batch_lengths.iter().sum::<usize>(), bytes.len());
                let first_len = batches(&read)
                    .next()
                    .transpose()?
                    .map_or(0, |b| b.bytes.len());
                if min_one_batch || first_len <= max_bytes {
                    assert!(!bytes.is_empty(), "offset {offset}, max_bytes {max_bytes}");
                } else {
                    assert!(bytes.is_empty());
                }
                if let Fetched::Slice(slice) = &fetched
                    && !slice.is_empty()
                {
                    let headers: Vec<_> = batches(&bytes)
                        .map(|b| b.map(|b| b.header))
                        .collect::<Result<_, _>>()?;
                    let (first, last) = (headers[0], headers[headers.len() - 1]);
                    assert!(first.base_offset <= offset && offset <= first.last_offset());
                    assert_eq!(
                        slice.offsets(),
                        Offset(first.base_offset)..Offset(last.next_offset())
                    );
                }
            }
        }
    }
    // Everything was appended in this process, so every read could be a slice.
    assert!(slices > 0);
    assert!(
        matches!(log.fetch(log_end_offset, 100, i64::MAX, true)?, Fetched::Copied(b) if b.is_empty())
    );
    Ok(())
}

#[test]
fn fetch_copies_what_was_never_checked_and_what_lies_past_the_limit() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let log = filled_log(dir.path(), small_config())?;
    let log_end_offset = log.log_end_offset();
    // A limit inside the active segment: batches past it must not go out, so they are read.
    let fetched = log.fetch(log_end_offset - 1, 1 << 20, log_end_offset - 1, true)?;
    assert!(matches!(fetched, Fetched::Copied(ref b) if b.is_empty()));
    log.close()?;

    // After a clean restart the old segments are trusted, not checked: the first read of
    // them is copied (and checked); after it, the same range goes out as a slice.
    let (log, _) = Log::open(dir.path(), small_config(), pool(), Recovery::Trusted, 0)?;
    let first = log.fetch(0, 1 << 20, i64::MAX, true)?;
    assert!(matches!(first, Fetched::Copied(_)));
    let again = log.fetch(0, 1 << 20, i64::MAX, true)?;
    assert!(matches!(again, Fetched::Slice(_)));
    assert_eq!(bytes_of(&first)?, bytes_of(&again)?);
    Ok(())
}

/// A consumer that resumes in the middle of the active segment after a restart gets slices
/// once it has read (and so checked) the tail, and appends keep that range growing.
#[test]
fn a_consumer_resuming_mid_segment_after_a_restart_gets_slices() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = TopicConfig {
        segment_bytes: 1 << 20,
        ..small_config()
    };
    filled_log(dir.path(), config.clone())?.close()?;
    let (mut log, _) = Log::open(dir.path(), config, pool(), Recovery::Trusted, 0)?;
    let resume_at = log.log_end_offset() / 2;
    let first = log.fetch(resume_at, 1 << 20, i64::MAX, true)?;
    assert!(matches!(first, Fetched::Copied(ref b) if !b.is_empty()));
    let again = log.fetch(resume_at, 1 << 20, i64::MAX, true)?;
    assert!(matches!(again, Fetched::Slice(_)));
    assert_eq!(bytes_of(&first)?, bytes_of(&again)?);

    let log_end_offset = log.log_end_offset();
    let batch = filler(3, 40, 0);
    log.append(&batch, 0, 0)?;
    let appended = log.fetch(log_end_offset, 1 << 20, i64::MAX, true)?;
    assert!(matches!(appended, Fetched::Slice(_)));
    assert_eq!(bytes_of(&appended)?.len(), batch.len());
    // The start of the segment was never read since the restart: it is still checked first.
    assert!(matches!(
        log.fetch(0, 1 << 20, i64::MAX, true)?,
        Fetched::Copied(_)
    ));
    Ok(())
}

#[test]
fn a_slice_stays_readable_after_its_segment_is_deleted() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut log = filled_log(dir.path(), small_config())?;
    let fetched = log.fetch(0, 1 << 20, i64::MAX, true)?;
    let Fetched::Slice(slice) = fetched else {
        anyhow::bail!("expected a slice, got {fetched:?}");
    };
    let before = slice.read_to_vec()?;
    let log_end_offset = log.log_end_offset();
    log.set_high_watermark(log_end_offset);
    log.delete_records(log_end_offset)?;
    assert!(!dir.path().join("00000000000000000000.log").exists());
    assert_eq!(slice.read_to_vec()?, before);
    Ok(())
}
