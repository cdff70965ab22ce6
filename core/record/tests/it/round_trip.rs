use fjord_record::{BatchBuilder, Compression, NewRecord, Records, batches, validate_batch};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Owned {
    timestamp_ms: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

fn owned() -> impl Strategy<Value = Owned> {
    (
        0i64..4_000_000_000_000,
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
        proptest::collection::vec(
            (
                proptest::collection::vec(any::<u8>(), 0..8),
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
            ),
            0..3,
        ),
    )
        .prop_map(|(timestamp_ms, key, value, headers)| Owned {
            timestamp_ms,
            key,
            value,
            headers,
        })
}

fn codec() -> impl Strategy<Value = Compression> {
    proptest::sample::select(Compression::ALL.to_vec())
}

proptest! {
    #[test]
    fn built_batches_validate_and_read_back(records in proptest::collection::vec(owned(), 1..20), codec in codec()) {
        let mut builder = BatchBuilder::new(codec);
        for r in &records {
            let headers: Vec<(&[u8], Option<&[u8]>)> =
                r.headers.iter().map(|(k, v)| (k.as_slice(), v.as_deref())).collect();
            builder.push(&NewRecord {
                timestamp_ms: r.timestamp_ms,
                key: r.key.as_deref(),
                value: r.value.as_deref(),
                headers: &headers,
            }).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        let bytes = builder.build().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut iter = batches(&bytes);
        let batch = iter.next().ok_or_else(|| TestCaseError::fail("no batch"))?
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(iter.next().is_none());
        validate_batch(&batch, 1 << 24).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(batch.header.records_count as usize, records.len());
        prop_assert_eq!(batch.header.max_timestamp, records.iter().map(|r| r.timestamp_ms).max().unwrap_or(-1));
        let decompressed = batch.decompressed_record_bytes(1 << 24).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let parsed: Vec<_> = Records::new(&decompressed).collect::<Result<_, _>>()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parsed.len(), records.len());
        for (i, (got, want)) in parsed.iter().zip(&records).enumerate() {
            prop_assert_eq!(got.offset_delta as usize, i);
            prop_assert_eq!(batch.header.base_timestamp + got.timestamp_delta, want.timestamp_ms);
            prop_assert_eq!(got.key, want.key.as_deref());
            prop_assert_eq!(got.value, want.value.as_deref());
            let headers: Vec<_> = got.headers().map(|h| (h.key.to_vec(), h.value.map(<[u8]>::to_vec))).collect();
            prop_assert_eq!(&headers, &want.headers);
        }
    }
}

#[test]
fn rebuild_keeps_offsets_and_drops_records() -> anyhow::Result<()> {
    for codec in Compression::ALL {
        let mut builder = BatchBuilder::new(codec);
        for i in 0..10u8 {
            builder.push(&NewRecord {
                timestamp_ms: 1_000 + i64::from(i),
                key: Some(&[i]),
                value: Some(b"v"),
                headers: &[],
            })?;
        }
        let mut bytes = builder.build()?;
        fjord_record::assign(&mut bytes, 500, 3)?;
        let batch = batches(&bytes).next().expect("one batch")?;
        let records = batch.decompressed_record_bytes(1 << 20)?;
        let kept: Vec<&[u8]> = Records::new(&records)
            .filter_map(Result::ok)
            .filter(|r| r.offset_delta % 3 == 0)
            .map(|r| r.raw)
            .collect();
        let rebuilt = fjord_record::rebuild(&batch.header, kept, codec)?;
        let again = batches(&rebuilt).next().expect("one batch")?;
        again.verify_crc()?;
        assert_eq!(again.header.base_offset, 500);
        assert_eq!(again.header.last_offset(), 509);
        assert_eq!(again.header.records_count, 4);
        assert_eq!(again.header.partition_leader_epoch, 3);
        let bytes = again.decompressed_record_bytes(1 << 20)?;
        let deltas: Vec<i32> = Records::new(&bytes)
            .map(|r| r.map(|r| r.offset_delta))
            .collect::<Result<_, _>>()?;
        assert_eq!(deltas, [0, 3, 6, 9]);
    }
    Ok(())
}

#[test]
fn recompress_changes_only_the_codec() -> anyhow::Result<()> {
    for from in Compression::ALL {
        let mut builder = BatchBuilder::new(from);
        for i in 0..20u8 {
            builder.push(&NewRecord {
                timestamp_ms: 2_000 + i64::from(i),
                key: Some(&[i]),
                value: Some(b"a value repeated, a value repeated, a value repeated"),
                headers: &[(b"h", Some(b"1"))],
            })?;
        }
        let bytes = builder.build()?;
        let batch = batches(&bytes).next().expect("one batch")?;
        let original = batch.decompressed_record_bytes(1 << 20)?;
        for to in Compression::ALL {
            let converted = fjord_record::recompress(&batch, to, 1 << 20)?;
            let again = batches(&converted).next().expect("one batch")?;
            validate_batch(&again, 1 << 20)?;
            assert_eq!(again.compression()?, to);
            assert_eq!(again.decompressed_record_bytes(1 << 20)?, original);
            let header = |h: &fjord_record::BatchHeader| {
                (
                    h.base_offset,
                    h.last_offset_delta,
                    h.base_timestamp,
                    h.max_timestamp,
                )
            };
            assert_eq!(header(&again.header), header(&batch.header));
            assert_eq!(
                (
                    again.header.producer_id,
                    again.header.base_sequence,
                    again.header.records_count
                ),
                (
                    batch.header.producer_id,
                    batch.header.base_sequence,
                    batch.header.records_count
                )
            );
        }
    }
    Ok(())
}
