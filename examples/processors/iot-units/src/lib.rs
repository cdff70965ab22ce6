//! Normalises IoT temperature readings: `{"device": "d1", "temperature": 98.6, "unit": "F"}`
//! (unit `C`, `F` or `K`) becomes `{"device": "d1", "celsius": 37.0, "time_ms": ...}`, keyed
//! by device. A reading that is not JSON, lacks a field, has an unknown unit, or is
//! physically impossible (below absolute zero, or above `max_celsius`, 200 by default) fails:
//! deploy with `--on-error dead-letter:TOPIC` to keep those for inspection.
//!
//! ```text
//! fjord processor deploy units --input readings --output readings-celsius \
//!     --on-error dead-letter:readings-bad iot_units.wasm
//! ```

use fjord_sdk::shapes::MapFn;
use fjord_sdk::{Config, Error, Output, Record};
use serde_json::{Value, json};

const ABSOLUTE_ZERO_CELSIUS: f64 = -273.15;

#[derive(Debug)]
pub struct Units {
    max_celsius: f64,
}

impl MapFn for Units {
    fn init(config: &Config) -> Result<Self, String> {
        let max_celsius = config.parse_or("max_celsius", 200.0)?;
        Ok(Units { max_celsius })
    }

    fn map(&mut self, record: &Record) -> Result<Output, Error> {
        let reading: Value = serde_json::from_slice(record.value.as_deref().unwrap_or_default())?;
        let device = reading["device"]
            .as_str()
            .ok_or_else(|| Error::new("no `device`"))?;
        let temperature = reading["temperature"]
            .as_f64()
            .ok_or_else(|| Error::new("no numeric `temperature`"))?;
        let celsius = match reading["unit"].as_str().unwrap_or("C") {
            "C" => temperature,
            "F" => (temperature - 32.0) * 5.0 / 9.0,
            "K" => temperature + ABSOLUTE_ZERO_CELSIUS,
            unit => return Err(Error::new(format!("unknown unit `{unit}`"))),
        };
        if !(ABSOLUTE_ZERO_CELSIUS..=self.max_celsius).contains(&celsius) {
            return Err(Error::new(format!(
                "{celsius:.2} °C is not a possible reading"
            )));
        }
        let rounded = (celsius * 100.0).round() / 100.0;
        let value = json!({ "device": device, "celsius": rounded, "time_ms": record.timestamp_ms });
        Ok(Output::new(Some(device), Some(value.to_string())))
    }
}

fjord_sdk::export_processor!(fjord_sdk::shapes::Map<Units>);

#[cfg(test)]
mod tests {
    use fjord_sdk::shapes::Map;
    use fjord_sdk::testing::TestRunner;

    use super::Units;

    #[test]
    fn readings_become_celsius_keyed_by_device() {
        let mut runner = TestRunner::<Map<Units>>::new(&[]).expect("defaults");
        let run = runner.send(
            None,
            Some(r#"{"device":"d1","temperature":98.6,"unit":"F"}"#),
            5,
        );
        assert_eq!(
            run.outputs[0].value_str(),
            Some(r#"{"celsius":37.0,"device":"d1","time_ms":5}"#)
        );
        assert_eq!(run.outputs[0].key.as_deref(), Some(&b"d1"[..]));
        let kelvin = runner.send(
            None,
            Some(r#"{"device":"d2","temperature":300,"unit":"K"}"#),
            0,
        );
        assert_eq!(
            kelvin.outputs[0].value_str(),
            Some(r#"{"celsius":26.85,"device":"d2","time_ms":0}"#)
        );
        let unitless = runner.send(None, Some(r#"{"device":"d3","temperature":300}"#), 0);
        assert_eq!(
            unitless.failures.len(),
            1,
            "Celsius by default, and 300 °C is too hot"
        );
    }

    #[test]
    fn impossible_or_malformed_readings_fail() {
        let mut runner = TestRunner::<Map<Units>>::new(&[("max_celsius", "100")]).expect("valid");
        for bad in [
            r#"{"device":"d","temperature":-300}"#,
            r#"{"device":"d","temperature":150}"#,
            r#"{"device":"d","temperature":1,"unit":"X"}"#,
            r#"{"temperature":1}"#,
            "garbage",
        ] {
            assert_eq!(runner.send(None, Some(bad), 0).failures.len(), 1, "{bad}");
        }
        assert!(TestRunner::<Map<Units>>::new(&[("max_celsius", "hot")]).is_err());
    }
}
