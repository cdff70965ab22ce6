//! `read_committed` in process: a Kafka consumer's view, markers and aborted records out.

use std::time::Duration;

use fjord_engine::{Engine, Offset, Origin, PartitionIndex};
use fjord_record::{BatchBuilder, Compression, NewRecord};

use crate::support::{START_MS, TestEngine, batch};

fn values(engine_read: &fjord_engine::CommittedRead) -> Vec<String> {
    engine_read
        .records
        .iter()
        .map(|record| {
            String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()).into_owned()
        })
        .collect()
}

fn record<'a>(value: &'a [u8], headers: &'a [(&'a [u8], Option<&'a [u8]>)]) -> NewRecord<'a> {
    NewRecord {
        timestamp_ms: START_MS + 5,
        key: Some(b"k"),
        value: Some(value),
        headers,
    }
}

async fn read_all(engine: &Engine, from: Offset) -> anyhow::Result<fjord_engine::CommittedRead> {
    Ok(engine
        .read_committed("input", PartitionIndex(0), from, 1024 * 1024)
        .await?)
}

#[tokio::test]
async fn committed_reads_leave_out_markers_and_aborted_transactions() -> anyhow::Result<()> {
    let test = TestEngine::open().await?;
    let engine = &test.engine;
    test.topic("input", 1, &[]).await;
    let input = PartitionIndex(0);
    let timeout = Duration::from_secs(60);
    let mut committer = engine
        .transactional_writer("committer", timeout, Compression::None)
        .await?;
    let mut aborter = engine
        .transactional_writer("aborter", timeout, Compression::Gzip)
        .await?;

    engine
        .append("input", input, batch(2, 1, START_MS), Origin::Client)
        .await?; // 0, 1
    committer
        .append("input", input, &[record(b"c1", &[(b"h", Some(b"v"))])])
        .await?; // 2
    aborter
        .append("input", input, &[record(b"a1", &[])])
        .await?; // 3
    let open = read_all(engine, Offset(0)).await?;
    assert_eq!(
        values(&open),
        ["value-0", "value-1"],
        "the LSO holds back the open transactions"
    );
    assert_eq!(open.next_offset, Offset(2));

    committer
        .append("input", input, &[record(b"c2", &[])])
        .await?; // 4
    aborter
        .append("input", input, &[record(b"a2", &[])])
        .await?; // 5
    aborter.abort().await?; // 6: ABORT
    committer.commit().await?; // 7: COMMIT
    engine
        .append("input", input, batch(1, 1, START_MS), Origin::Client)
        .await?; // 8

    let all = read_all(engine, Offset(0)).await?;
    assert_eq!(values(&all), ["value-0", "value-1", "c1", "c2", "value-0"]);
    let offsets: Vec<i64> = all.records.iter().map(|record| record.offset.0).collect();
    assert_eq!(offsets, [0, 1, 2, 4, 8]);
    assert_eq!(all.next_offset, Offset(9));
    let c1 = &all.records[2];
    assert_eq!(c1.timestamp_ms, START_MS + 5);
    assert_eq!(c1.key.as_deref(), Some(&b"k"[..]));
    assert_eq!(
        c1.headers,
        [(
            bytes::Bytes::from_static(b"h"),
            Some(bytes::Bytes::from_static(b"v"))
        )]
    );

    let from_middle = read_all(engine, Offset(1)).await?;
    assert_eq!(
        values(&from_middle)[0],
        "value-1",
        "a read from inside a batch starts at its offset"
    );
    let from_aborted = read_all(engine, Offset(5)).await?;
    assert_eq!(
        values(&from_aborted),
        ["value-0"],
        "an abort that began before the read still applies"
    );
    let at_end = read_all(engine, Offset(9)).await?;
    assert!(at_end.records.is_empty());
    assert_eq!(at_end.next_offset, Offset(9));
    Ok(())
}

#[tokio::test]
async fn compressed_and_log_append_time_batches_decode_as_a_consumer_sees_them()
-> anyhow::Result<()> {
    let test = TestEngine::open().await?;
    let engine = &test.engine;
    test.topic("input", 1, &[("message.timestamp.type", "LogAppendTime")])
        .await;
    let mut builder = BatchBuilder::new(Compression::Zstd);
    for index in 0..100 {
        let value = format!("record-{index}");
        builder.push(&NewRecord {
            timestamp_ms: 1,
            key: None,
            value: Some(value.as_bytes()),
            headers: &[],
        })?;
    }
    engine
        .append(
            "input",
            PartitionIndex(0),
            bytes::Bytes::from(builder.build()?),
            Origin::Client,
        )
        .await?;
    let read = read_all(engine, Offset(0)).await?;
    assert_eq!(read.records.len(), 100);
    assert_eq!(read.records[99].value.as_deref(), Some(&b"record-99"[..]));
    assert!(
        read.records
            .iter()
            .all(|record| record.timestamp_ms == START_MS),
        "LogAppendTime is the broker's"
    );
    Ok(())
}
