//! Sends each JSON record, unchanged, to the topic its field names: `route.VALUE=TOPIC` per
//! value, `default=TOPIC` for the others (or `default=drop`). Records that are not JSON
//! objects fail (the error policy decides).
//!
//! ```text
//! fjord processor deploy by-region --input orders --output orders-eu --output orders-us \
//!     --output orders-other --config field=region --config route.eu=orders-eu \
//!     --config route.us=orders-us --config default=orders-other route_by_field.wasm
//! ```

use std::collections::BTreeMap;

use fjord_sdk::shapes::{Destination, RouteFn};
use fjord_sdk::{Config, Error, Record};
use serde_json::Value;

#[derive(Debug)]
pub struct ByField {
    pointer: String,
    routes: BTreeMap<String, String>,
    default: Destination,
}

impl RouteFn for ByField {
    fn init(config: &Config) -> Result<Self, String> {
        let field = config.require("field")?;
        let pointer = if field.starts_with('/') {
            field.to_owned()
        } else {
            format!("/{field}")
        };
        let routes: BTreeMap<String, String> = config
            .entries()
            .iter()
            .filter_map(|(key, topic)| {
                key.strip_prefix("route.")
                    .map(|value| (value.to_owned(), topic.clone()))
            })
            .collect();
        if routes.is_empty() {
            return Err("no `route.VALUE=TOPIC` setting".to_owned());
        }
        let default = match config.get("default") {
            None | Some("drop") => Destination::Drop,
            Some(topic) => Destination::Topic(topic.to_owned()),
        };
        Ok(ByField {
            pointer,
            routes,
            default,
        })
    }

    fn route(&mut self, record: &Record) -> Result<Destination, Error> {
        let document: Value = serde_json::from_slice(record.value.as_deref().unwrap_or_default())?;
        if !document.is_object() {
            return Err(Error::new("the value is not a JSON object"));
        }
        let value = match document.pointer(&self.pointer) {
            Some(Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
            None => return Ok(self.default.clone()),
        };
        Ok(self.routes.get(&value).map_or_else(
            || self.default.clone(),
            |topic| Destination::Topic(topic.clone()),
        ))
    }
}

fjord_sdk::export_processor!(fjord_sdk::shapes::Route<ByField>);

#[cfg(test)]
mod tests {
    use fjord_sdk::shapes::Route;
    use fjord_sdk::testing::TestRunner;

    use super::ByField;

    #[test]
    fn each_record_goes_to_the_topic_of_its_value() {
        let settings = [
            ("field", "region"),
            ("route.eu", "orders-eu"),
            ("route.us", "orders-us"),
            ("default", "rest"),
        ];
        let mut runner = TestRunner::<Route<ByField>>::new(&settings).expect("valid settings");
        let topic = |runner: &mut TestRunner<Route<ByField>>, value: &str| {
            runner
                .send(None, Some(value), 0)
                .outputs
                .first()
                .and_then(|output| output.topic.clone())
        };
        assert_eq!(
            topic(&mut runner, r#"{"region":"eu"}"#).as_deref(),
            Some("orders-eu")
        );
        assert_eq!(
            topic(&mut runner, r#"{"region":"us"}"#).as_deref(),
            Some("orders-us")
        );
        assert_eq!(
            topic(&mut runner, r#"{"region":"apac"}"#).as_deref(),
            Some("rest")
        );
        assert_eq!(
            topic(&mut runner, r#"{"other":1}"#).as_deref(),
            Some("rest")
        );
        assert_eq!(runner.send(None, Some("[]"), 0).failures.len(), 1);
    }

    #[test]
    fn without_a_default_unrouted_records_are_dropped() {
        let mut runner = TestRunner::<Route<ByField>>::new(&[("field", "k"), ("route.a", "t")])
            .expect("valid settings");
        assert!(
            runner
                .send(None, Some(r#"{"k":"b"}"#), 0)
                .outputs
                .is_empty()
        );
        assert!(TestRunner::<Route<ByField>>::new(&[("field", "k")]).is_err());
    }
}
