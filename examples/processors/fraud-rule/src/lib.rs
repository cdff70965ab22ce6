//! A per-card rule over tumbling windows of event time: more than `max_payments` payments
//! of one card (the record key) within one `window_ms` window is suspicious.
//!
//! Every payment gets one decision on the default output, keyed by card:
//! `{"card", "offset", "window_start_ms", "count", "flagged"}`, where `count` is the card's
//! payments in the window so far. When a window closes (the watermark passes its end, so a
//! timer fires, or a later payment of the card opens the next window), a card that was
//! flagged in it gets one alert on `alerts_topic`: `{"card", "window_start_ms", "count"}`.
//!
//! ```text
//! fjord processor deploy fraud --input payments --output decisions --output alerts \
//!     --config max_payments=3 --config window_ms=60000 --config alerts_topic=alerts \
//!     fraud_rule.wasm
//! ```

use fjord_sdk::{Config, Context, Error, Output, Processor, Record, Timer};
use serde_json::json;

#[derive(Debug)]
pub struct FraudRule {
    max_payments: u64,
    window_ms: i64,
    alerts_topic: String,
}

/// A card's open window, as kept in state: its start and its count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    start_ms: i64,
    count: u64,
}

impl Window {
    fn encode(self) -> [u8; 16] {
        let mut bytes = [0; 16];
        bytes[..8].copy_from_slice(&self.start_ms.to_be_bytes());
        bytes[8..].copy_from_slice(&self.count.to_be_bytes());
        bytes
    }

    fn decode(bytes: &[u8]) -> Option<Window> {
        let (start, count) = bytes.split_first_chunk::<8>()?;
        Some(Window {
            start_ms: i64::from_be_bytes(*start),
            count: u64::from_be_bytes(count.try_into().ok()?),
        })
    }
}

impl FraudRule {
    /// The alert for a closing window, if the card was flagged in it.
    fn close(&self, card: &[u8], window: Window, context: &mut Context<'_>) {
        if window.count > self.max_payments {
            let card_text = String::from_utf8_lossy(card);
            let alert = json!({ "card": card_text, "window_start_ms": window.start_ms, "count": window.count });
            context.emit(
                Output::new(Some(card), Some(alert.to_string()))
                    .with_topic(self.alerts_topic.clone())
                    .with_timestamp_ms(window.start_ms + self.window_ms),
            );
        }
    }
}

impl Processor for FraudRule {
    fn init(config: &Config) -> Result<Self, String> {
        let max_payments = config.parse_or("max_payments", 3)?;
        let window_ms: i64 = config.parse_or("window_ms", 60_000)?;
        if window_ms <= 0 {
            return Err("window_ms must be positive".to_owned());
        }
        let alerts_topic = config.require("alerts_topic")?.to_owned();
        Ok(FraudRule {
            max_payments,
            window_ms,
            alerts_topic,
        })
    }

    fn process(&mut self, record: &Record, context: &mut Context<'_>) -> Result<(), Error> {
        let card = record
            .key
            .as_deref()
            .ok_or_else(|| Error::new("a payment needs its card as key"))?;
        let start_ms = record.timestamp_ms.div_euclid(self.window_ms) * self.window_ms;
        let mut window = match context.get(card).as_deref().and_then(Window::decode) {
            Some(open) if open.start_ms == start_ms => open,
            Some(open) if open.start_ms < start_ms => {
                self.close(card, open, context);
                Window { start_ms, count: 0 }
            }
            // A late payment, for a window already closed: counted in its own window anew.
            _ => Window { start_ms, count: 0 },
        };
        window.count += 1;
        context.put(card, window.encode())?;
        context.set_timer(card, start_ms + self.window_ms)?;
        let decision = json!({
            "card": String::from_utf8_lossy(card),
            "offset": record.offset,
            "window_start_ms": start_ms,
            "count": window.count,
            "flagged": window.count > self.max_payments,
        });
        context.emit(Output::new(Some(card), Some(decision.to_string())));
        Ok(())
    }

    fn on_timer(&mut self, timer: &Timer, context: &mut Context<'_>) -> Result<(), Error> {
        let Some(window) = context.get(&timer.key).as_deref().and_then(Window::decode) else {
            return Ok(());
        };
        context.delete(&timer.key);
        self.close(&timer.key, window, context);
        Ok(())
    }
}

fjord_sdk::export_processor!(FraudRule);

#[cfg(test)]
mod tests {
    use fjord_sdk::testing::TestRunner;
    use serde_json::Value;

    use super::FraudRule;

    fn runner() -> TestRunner<FraudRule> {
        TestRunner::new(&[
            ("max_payments", "2"),
            ("window_ms", "1000"),
            ("alerts_topic", "alerts"),
        ])
        .expect("valid")
    }

    fn json(output: &fjord_sdk::Output) -> Value {
        serde_json::from_slice(output.value.as_deref().unwrap_or_default()).expect("JSON")
    }

    #[test]
    fn the_third_payment_in_a_window_is_flagged_and_the_window_alerts_when_it_closes() {
        let mut runner = runner();
        for (index, time_ms) in [100, 200, 300].into_iter().enumerate() {
            let run = runner.send(Some("card-1"), Some("pay"), time_ms);
            assert_eq!(run.outputs.len(), 1);
            assert_eq!(json(&run.outputs[0])["flagged"], index == 2);
        }
        assert_eq!(
            runner.send(Some("card-2"), Some("pay"), 900).outputs.len(),
            1,
            "no alert before the end"
        );
        let closing = runner.send(Some("card-2"), Some("pay"), 1_000);
        let alerts: Vec<_> = closing
            .outputs
            .iter()
            .filter(|output| output.topic.as_deref() == Some("alerts"))
            .collect();
        assert_eq!(alerts.len(), 1);
        assert_eq!(
            json(alerts[0]),
            serde_json::json!({"card": "card-1", "window_start_ms": 0, "count": 3})
        );
        assert_eq!(alerts[0].timestamp_ms, Some(1_000));
        assert_eq!(
            runner.state().len(),
            1,
            "card-1's window is gone, card-2's next one open"
        );
    }

    #[test]
    fn a_payment_in_the_next_window_closes_the_previous_one_at_once() {
        let mut runner = runner();
        for time_ms in [10, 20, 30] {
            runner.send(Some("c"), Some("pay"), time_ms);
        }
        let record = runner.record(Some(b"c"), Some(b"pay"), 1_500);
        let next = runner.process(vec![record]);
        let topics: Vec<Option<&str>> = next
            .outputs
            .iter()
            .map(|output| output.topic.as_deref())
            .collect();
        assert_eq!(
            topics,
            [Some("alerts"), None],
            "the alert, then the decision; the timer finds nothing"
        );
        assert_eq!(json(&next.outputs[1])["count"], 1);
    }

    #[test]
    fn settings_are_checked() {
        assert!(
            TestRunner::<FraudRule>::new(&[]).is_err(),
            "alerts_topic is required"
        );
        assert!(
            TestRunner::<FraudRule>::new(&[("alerts_topic", "a"), ("window_ms", "0")]).is_err()
        );
    }
}
