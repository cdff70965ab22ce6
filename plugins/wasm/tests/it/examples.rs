//! The examples as components give exactly what the same code gives natively.

use fjord_processor::{InputRecord, Transform};
use fjord_sdk::shapes::Filter;
use fjord_sdk::testing::TestRunner;
use json_filter::JsonFilter;

use crate::{call, start, test_limits};

/// 1,000 records: matching, not matching, not JSON, tombstones, with keys and headers.
fn json_records() -> Vec<InputRecord> {
    (0..1_000_i64)
        .map(|offset| {
            let value = match offset % 5 {
                0 => Some(format!(r#"{{"region":"eu","id":{offset}}}"#)),
                1 => Some(format!(r#"{{"region":"us","id":{offset}}}"#)),
                2 => Some(format!(r#"{{"customer":{{"region":"eu"}},"id":{offset}}}"#)),
                3 => Some("not json".to_owned()),
                _ => None,
            };
            InputRecord {
                partition: 3,
                offset,
                timestamp_ms: 1_000_000 + offset,
                key: (offset % 2 == 0).then(|| format!("key-{offset}").into_bytes()),
                value: value.map(String::into_bytes),
                headers: vec![fjord_processor::Header {
                    key: "h".to_owned(),
                    value: Some(vec![offset as u8]),
                }],
            }
        })
        .collect()
}

fn to_sdk(record: &InputRecord) -> fjord_sdk::Record {
    fjord_sdk::Record {
        partition: record.partition,
        offset: record.offset,
        timestamp_ms: record.timestamp_ms,
        key: record.key.clone(),
        value: record.value.clone(),
        headers: record
            .headers
            .iter()
            .map(|header| fjord_sdk::Header {
                key: header.key.clone(),
                value: header.value.clone(),
            })
            .collect(),
    }
}

#[test]
fn json_filter_as_a_component_matches_native_code_record_by_record() {
    let settings = [("field", "region"), ("value", "eu")];
    let records = json_records();
    let mut native = TestRunner::<Filter<JsonFilter>>::new(&settings).expect("valid settings");
    let mut component = start("json-filter", &settings, test_limits()).expect("starts");
    for batch in records.chunks(100) {
        let expected = native.process(batch.iter().map(to_sdk).collect());
        let actual = component
            .process(batch.to_vec(), call(batch[0].timestamp_ms))
            .expect("processes");
        assert_eq!(actual.outputs.len(), expected.outputs.len());
        for (actual, expected) in actual.outputs.iter().zip(&expected.outputs) {
            assert_eq!(actual.topic, expected.topic);
            assert_eq!(actual.partition, expected.partition);
            assert_eq!(actual.key, expected.key);
            assert_eq!(actual.value, expected.value);
            assert_eq!(actual.timestamp_ms, expected.timestamp_ms);
            let headers: Vec<_> = actual
                .headers
                .iter()
                .map(|header| (&header.key, &header.value))
                .collect();
            let expected_headers: Vec<_> = expected
                .headers
                .iter()
                .map(|header| (&header.key, &header.value))
                .collect();
            assert_eq!(headers, expected_headers);
        }
        let failures: Vec<_> = actual
            .failures
            .iter()
            .map(|failure| (failure.index, &failure.message))
            .collect();
        let expected_failures: Vec<_> = expected
            .failures
            .iter()
            .map(|failure| (failure.index, &failure.message))
            .collect();
        assert_eq!(failures, expected_failures);
    }
}
