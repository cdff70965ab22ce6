//! kafka-protocol is an independent implementation of the format: batches it encodes must
//! validate here, and batches built here must decode there, for every codec.

use bytes::{Bytes, BytesMut};
use fjord_record::{BatchBuilder, Compression, NewRecord, Records, batches, validate_batch};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression as KpCompression, Record as KpRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType as KpTimestampType,
};

fn kp(codec: Compression) -> KpCompression {
    match codec {
        Compression::None => KpCompression::None,
        Compression::Gzip => KpCompression::Gzip,
        Compression::Snappy => KpCompression::Snappy,
        Compression::Lz4 => KpCompression::Lz4,
        Compression::Zstd => KpCompression::Zstd,
    }
}

#[test]
fn batches_from_kafka_protocol_validate_here() -> anyhow::Result<()> {
    for codec in Compression::ALL {
        let records: Vec<KpRecord> = (0..50)
            .map(|i| {
                let mut headers = IndexMap::new();
                headers.insert(
                    StrBytes::from_static_str("trace"),
                    Some(Bytes::from(format!("t{i}"))),
                );
                KpRecord {
                    transactional: false,
                    control: false,
                    delete_horizon: false,
                    partition_leader_epoch: 0,
                    producer_id: 42,
                    producer_epoch: 1,
                    timestamp_type: KpTimestampType::Creation,
                    offset: i,
                    sequence: i as i32,
                    timestamp: 1_700_000_000_000 + i,
                    key: (i % 2 == 0).then(|| Bytes::from(format!("key-{i}"))),
                    value: (i % 7 != 0).then(|| Bytes::from(vec![b'x'; i as usize * 10])),
                    headers,
                }
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: kp(codec),
            },
        )?;
        let batch = batches(&buf).next().expect("one batch")?;
        validate_batch(&batch, 1 << 24)?;
        assert_eq!(batch.compression()?, codec);
        assert_eq!(batch.header.producer_id, 42);
        let bytes = batch.decompressed_record_bytes(1 << 24)?;
        for (record, want) in Records::new(&bytes).zip(&records) {
            let record = record?;
            assert_eq!(record.key, want.key.as_deref());
            assert_eq!(record.value, want.value.as_deref());
            assert_eq!(
                batch.header.base_timestamp + record.timestamp_delta,
                want.timestamp
            );
            let header = record.headers().next().expect("one header");
            assert_eq!(header.key, b"trace");
        }
    }
    Ok(())
}

#[test]
fn batches_built_here_decode_in_kafka_protocol() -> anyhow::Result<()> {
    for codec in Compression::ALL {
        let mut builder = BatchBuilder::new(codec);
        for i in 0..50u32 {
            let value = vec![b'v'; i as usize * 13];
            builder.push(&NewRecord {
                timestamp_ms: 1_700_000_000_000 + i64::from(i),
                key: Some(&i.to_be_bytes()),
                value: (i % 5 != 0).then_some(value.as_slice()),
                headers: &[(b"h", None)],
            })?;
        }
        let mut bytes = Bytes::from(builder.build()?);
        let set = RecordBatchDecoder::decode(&mut bytes)?;
        assert_eq!(set.records.len(), 50, "{codec:?}");
        for (i, record) in set.records.iter().enumerate() {
            assert_eq!(record.offset, i as i64);
            assert_eq!(record.key.as_deref(), Some(&(i as u32).to_be_bytes()[..]));
            assert_eq!(record.value.is_none(), i % 5 == 0);
            assert_eq!(record.timestamp, 1_700_000_000_000 + i as i64);
        }
    }
    Ok(())
}
