//! Keeps the JSON records whose `field` equals `value`; drops the rest, and fails records
//! that are not JSON objects (the error policy decides what happens to them).
//!
//! ```text
//! fjord processor deploy orders-eu --input orders --output orders-eu \
//!     --config field=region --config value=eu json_filter.wasm
//! ```
//!
//! `field` is a top-level field name or a JSON pointer (`/customer/country`); `value` is
//! compared with the field's string, or with the JSON text of a number, boolean or null.

use fjord_sdk::shapes::FilterFn;
use fjord_sdk::{Config, Error, Record};
use serde_json::Value;

#[derive(Debug)]
pub struct JsonFilter {
    pointer: String,
    value: String,
}

impl FilterFn for JsonFilter {
    fn init(config: &Config) -> Result<Self, String> {
        let field = config.require("field")?;
        let pointer = if field.starts_with('/') {
            field.to_owned()
        } else {
            format!("/{field}")
        };
        Ok(JsonFilter {
            pointer,
            value: config.require("value")?.to_owned(),
        })
    }

    fn keep(&mut self, record: &Record) -> Result<bool, Error> {
        let Some(bytes) = record.value.as_deref() else {
            return Ok(false); // a tombstone has no fields
        };
        let document: Value = serde_json::from_slice(bytes)?;
        if !document.is_object() {
            return Err(Error::new("the value is not a JSON object"));
        }
        Ok(match document.pointer(&self.pointer) {
            Some(Value::String(text)) => *text == self.value,
            Some(other) => json_text(other) == self.value,
            None => false,
        })
    }
}

/// A number, boolean or null as JSON writes it (`7`, `true`, `null`).
fn json_text(value: &Value) -> String {
    value.to_string()
}

fjord_sdk::export_processor!(fjord_sdk::shapes::Filter<JsonFilter>);

#[cfg(test)]
mod tests {
    use fjord_sdk::shapes::Filter;
    use fjord_sdk::testing::TestRunner;

    use super::JsonFilter;

    #[test]
    fn keeps_matching_records_and_fails_what_is_not_an_object() {
        let mut runner =
            TestRunner::<Filter<JsonFilter>>::new(&[("field", "region"), ("value", "eu")])
                .expect("valid config");
        let records = vec![
            runner.record(None, Some(br#"{"region":"eu","id":1}"#), 10),
            runner.record(None, Some(br#"{"region":"us","id":2}"#), 11),
            runner.record(None, Some(b"[1,2]"), 12),
            runner.record(None, Some(b"not json"), 13),
            runner.record(Some(b"k"), None, 14),
        ];
        let run = runner.process(records);
        let values: Vec<_> = run
            .outputs
            .iter()
            .map(|output| output.value_str())
            .collect();
        assert_eq!(values, [Some(r#"{"region":"eu","id":1}"#)]);
        assert_eq!(run.outputs[0].timestamp_ms, Some(10));
        let failed: Vec<u32> = run.failures.iter().map(|failure| failure.index).collect();
        assert_eq!(failed, [2, 3]);
    }

    #[test]
    fn compares_numbers_by_their_json_text_and_follows_pointers() {
        let mut runner =
            TestRunner::<Filter<JsonFilter>>::new(&[("field", "/a/b"), ("value", "7")])
                .expect("valid config");
        assert_eq!(
            runner.send(None, Some(r#"{"a":{"b":7}}"#), 0).outputs.len(),
            1
        );
        assert_eq!(
            runner
                .send(None, Some(r#"{"a":{"b":"7"}}"#), 0)
                .outputs
                .len(),
            1
        );
        assert_eq!(
            runner.send(None, Some(r#"{"a":{"b":8}}"#), 0).outputs.len(),
            0
        );
    }

    #[test]
    fn refuses_a_config_without_field() {
        let error =
            TestRunner::<Filter<JsonFilter>>::new(&[("value", "eu")]).expect_err("no field");
        assert_eq!(error, "missing setting `field`");
    }
}
