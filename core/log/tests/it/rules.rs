//! The topic's record rules on append: keys on compacted topics, the timestamp window
//! (KIP-937), each refused record named (KIP-467), nothing written.

use fjord_log::{Error, RecordRule, TopicConfig};
use fjord_partition::Error as Refused;
use fjord_record::{Compression, TimestampType};

use crate::support::{batch, compact_config, new_log, small_config};

const NOW_MS: i64 = 1_767_225_600_000;
const HOUR_MS: i64 = 3_600_000;

fn refused(result: fjord_log::Result<fjord_log::AppendInfo>) -> (RecordRule, Vec<i32>, String) {
    match result {
        Err(Error::Partition(Refused::InvalidRecords {
            rule,
            message,
            records,
        })) => (
            rule,
            records.iter().map(|r| r.batch_index).collect(),
            message,
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_compacted_topic_refuses_records_without_a_key() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut log = new_log(dir.path(), compact_config())?;
    for codec in [Compression::None, Compression::Zstd] {
        let records = batch(
            &[
                (Some(b"a"), Some(b"1"), NOW_MS),
                (None, Some(b"2"), NOW_MS),
                (Some(b"c"), Some(b"3"), NOW_MS),
                (None, None, NOW_MS),
            ],
            codec,
        );
        let (rule, indexes, message) = refused(log.append(&records, 0, NOW_MS));
        assert_eq!(rule, RecordRule::KeyRequired);
        assert_eq!(indexes, [1, 3]);
        assert!(message.starts_with("Compacted topic cannot accept message without key"));
    }
    assert_eq!(log.log_end_offset(), 0, "nothing written");
    let keyed = batch(&[(Some(b"a"), None, NOW_MS)], Compression::None);
    log.append(&keyed, 0, NOW_MS)?;
    assert_eq!(log.log_end_offset(), 1);
    Ok(())
}

#[test]
fn timestamps_outside_the_window_are_refused_under_create_time_only() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = TopicConfig {
        message_timestamp_before_max_ms: 24 * HOUR_MS,
        ..small_config()
    };
    let mut log = new_log(dir.path(), config.clone())?;
    let edge = [
        (None, Some(&b"oldest allowed"[..]), NOW_MS - 24 * HOUR_MS),
        (None, Some(&b"newest allowed"[..]), NOW_MS + HOUR_MS),
    ];
    log.append(&batch(&edge, Compression::None), 0, NOW_MS)?;
    let outside = [
        (None, Some(&b"ok"[..]), NOW_MS),
        (None, Some(&b"too old"[..]), NOW_MS - 24 * HOUR_MS - 1),
        (None, Some(&b"too new"[..]), NOW_MS + HOUR_MS + 1),
    ];
    let (rule, indexes, message) =
        refused(log.append(&batch(&outside, Compression::Lz4), 0, NOW_MS));
    assert_eq!(rule, RecordRule::TimestampOutOfRange);
    assert_eq!(indexes, [1, 2]);
    assert!(message.contains("is out of range"), "{message}");
    assert_eq!(
        log.log_end_offset(),
        2,
        "nothing of the refused batch written"
    );

    // The broker stamps LogAppendTime itself: the producer's timestamps do not matter.
    let dir = tempfile::tempdir()?;
    let config = TopicConfig {
        message_timestamp_type: TimestampType::LogAppendTime,
        ..config
    };
    let mut log = new_log(dir.path(), config)?;
    log.append(&batch(&outside, Compression::None), 0, NOW_MS)?;
    Ok(())
}

#[test]
fn the_defaults_take_any_past_timestamp_and_up_to_an_hour_ahead() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut log = new_log(dir.path(), small_config())?;
    log.append(&batch(&[(None, None, 0)], Compression::None), 0, NOW_MS)?;
    let ahead = [(None, None, NOW_MS + HOUR_MS + 1)];
    let (rule, _, _) = refused(log.append(&batch(&ahead, Compression::None), 0, NOW_MS));
    assert_eq!(rule, RecordRule::TimestampOutOfRange);
    let mut config = small_config();
    config.set("message.timestamp.after.max.ms", &i64::MAX.to_string())?;
    // Deprecated Kafka 3.x configs are accepted (and ignored).
    config.set("message.format.version", "3.0-IV1")?;
    config.set("message.downconversion.enable", "true")?;
    log.set_config(config)?;
    log.append(&batch(&ahead, Compression::None), 0, NOW_MS)?;
    Ok(())
}
