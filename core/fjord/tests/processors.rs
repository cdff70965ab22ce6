//! WebAssembly processors deployed into a real `fjord serve` with the `fjord processor` CLI,
//! fed by a librdkafka producer and read back by a read_committed librdkafka consumer. The
//! components are built from this repository's sources by the guest harness.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use fjord_sdk::shapes::Filter;
use fjord_sdk::testing::TestRunner;
use json_filter::JsonFilter;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

#[allow(dead_code)]
#[path = "support/fjord_serve.rs"]
mod fjord_serve;

use fjord_serve::FjordServe;

const DEADLINE: Duration = Duration::from_secs(120);

struct Broker {
    serve: Option<FjordServe>,
    bootstrap: String,
    admin_listen: String,
    admin: String,
    data: tempfile::TempDir,
}

fn start_broker() -> anyhow::Result<Broker> {
    let data = tempfile::tempdir()?;
    let admin_listen = format!(
        "127.0.0.1:{}",
        TcpListener::bind("127.0.0.1:0")?.local_addr()?.port()
    );
    let serve = FjordServe::start(
        data.path(),
        &["--metrics-listen", &admin_listen, "--num-partitions", "1"],
    )?;
    Ok(Broker {
        bootstrap: serve.bootstrap.clone(),
        serve: Some(serve),
        admin: format!("http://{admin_listen}"),
        admin_listen,
        data,
    })
}

impl Broker {
    /// SIGKILL, then a new broker on the same port, admin port and data directory.
    fn kill_and_restart(&mut self) -> anyhow::Result<()> {
        let serve = self.serve.take().context("a broker runs")?;
        let port = serve.port()?;
        serve.kill()?;
        let args = [
            "--metrics-listen",
            self.admin_listen.as_str(),
            "--num-partitions",
            "1",
        ];
        self.serve = Some(FjordServe::start_on(self.data.path(), port, &args)?);
        Ok(())
    }

    /// Runs the `fjord` CLI against this broker; fails with its stderr unless it succeeds.
    fn fjord(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = Command::new(env!("CARGO_BIN_EXE_fjord"))
            .args(args)
            .env("FJORD_BROKERS", &self.bootstrap)
            .env("FJORD_ADMIN", &self.admin)
            .env("RUST_LOG", "warn")
            .output()?;
        ensure!(
            output.status.success(),
            "fjord {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8(output.stdout)?)
    }

    fn describe(&self, name: &str) -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::from_str(&self.fjord(&[
            "processor",
            "describe",
            name,
            "-o",
            "json",
        ])?)?)
    }

    /// Waits until every task of `name` has committed the whole input.
    fn wait_caught_up(&self, name: &str, input_records: u64) -> anyhow::Result<serde_json::Value> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let description = self.describe(name)?;
            let committed: i64 = description["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|task| task["committed_offset"].as_i64())
                .sum();
            if committed as u64 >= input_records {
                return Ok(description);
            }
            ensure!(
                Instant::now() < deadline,
                "{name} did not catch up: {description}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap)
            .set("log_level", "3");
        config
    }

    fn produce(&self, topic: &str, records: &[(String, String)]) -> anyhow::Result<()> {
        let producer: BaseProducer = self.config().set("linger.ms", "5").create()?;
        for (key, value) in records {
            let headers = OwnedHeaders::new().insert(Header {
                key: "source",
                value: Some("test"),
            });
            producer
                .send(
                    BaseRecord::to(topic)
                        .key(key)
                        .payload(value)
                        .headers(headers),
                )
                .map_err(|(error, _)| error)?;
            producer.poll(Duration::ZERO);
        }
        producer.flush(DEADLINE)?;
        Ok(())
    }

    /// Every committed record of `topic` (partitions 0..count), read to the end offsets.
    fn read_committed(&self, topic: &str, partitions: i32) -> anyhow::Result<Vec<Consumed>> {
        let consumer: BaseConsumer = self
            .config()
            .set("group.id", format!("reader-{topic}"))
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .create()?;
        let mut assignment = TopicPartitionList::new();
        let mut ends = BTreeMap::new();
        for partition in 0..partitions {
            assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
            let (_, high) = consumer.fetch_watermarks(topic, partition, DEADLINE)?;
            ends.insert(partition, high);
        }
        consumer.assign(&assignment)?;
        let deadline = Instant::now() + DEADLINE;
        let mut found = Vec::new();
        let mut positions: BTreeMap<i32, i64> =
            ends.keys().map(|&partition| (partition, 0)).collect();
        // Done once each partition's next offset passes its end (markers count as offsets).
        while positions
            .iter()
            .any(|(partition, position)| *position < ends[partition] - 1 && ends[partition] > 0)
        {
            ensure!(
                Instant::now() < deadline,
                "{topic}: read {} records, positions {positions:?}, ends {ends:?}",
                found.len()
            );
            let Some(message) = consumer.poll(Duration::from_millis(100)) else {
                for (partition, position) in positions.iter_mut() {
                    if let Ok(Offset::Offset(next)) = consumer
                        .position()?
                        .find_partition(topic, *partition)
                        .map_or(Ok(Offset::Invalid), |element| {
                            Ok::<_, anyhow::Error>(element.offset())
                        })
                    {
                        *position = (*position).max(next - 1);
                    }
                }
                continue;
            };
            let message = message?;
            positions.insert(message.partition(), message.offset());
            let text = |bytes: Option<&[u8]>| {
                bytes.map(|bytes| String::from_utf8_lossy(bytes).into_owned())
            };
            let headers = message
                .headers()
                .map(|headers| {
                    headers
                        .iter()
                        .map(|header| {
                            (
                                header.key.to_owned(),
                                text(header.value).unwrap_or_default(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            found.push(Consumed {
                partition: message.partition(),
                offset: message.offset(),
                timestamp_ms: message.timestamp().to_millis().unwrap_or_default(),
                key: text(message.key()).unwrap_or_default(),
                value: text(message.payload()).unwrap_or_default(),
                headers,
            });
        }
        Ok(found)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Consumed {
    partition: i32,
    offset: i64,
    timestamp_ms: i64,
    key: String,
    value: String,
    headers: BTreeMap<String, String>,
}

fn orders(count: usize) -> Vec<(String, String)> {
    (0..count)
        .map(|index| {
            let key = format!("customer-{}", index % 37);
            let value = match index % 7 {
                0 | 3 => format!(r#"{{"region":"eu","id":{index},"amount":{}}}"#, index * 3),
                1 | 4 => format!(r#"{{"region":"us","id":{index}}}"#),
                2 => format!(r#"{{"customer":{{"region":"eu"}},"id":{index}}}"#),
                5 => format!("not json {index}"),
                _ => format!(r#"{{"region":"apac","id":{index}}}"#),
            };
            (key, value)
        })
        .collect()
}

#[test]
fn the_json_filter_in_the_broker_gives_what_native_code_gives_record_by_record()
-> anyhow::Result<()> {
    let module = guest_harness::path("json-filter");
    let broker = start_broker()?;
    for (topic, partitions) in [("orders", "3"), ("orders-eu", "3"), ("orders-bad", "1")] {
        broker.fjord(&["topic", "create", topic, "-p", partitions])?;
    }
    let input = orders(3_000);
    broker.produce("orders", &input[..1_000])?;
    broker.fjord(&[
        "processor",
        "deploy",
        "eu-orders",
        "--input",
        "orders",
        "--output",
        "orders-eu",
        "--config",
        "field=region",
        "--config",
        "value=eu",
        "--on-error",
        "dead-letter:orders-bad",
        module.to_str().context("UTF-8 path")?,
    ])?;
    broker.produce("orders", &input[1_000..])?;
    let description = broker.wait_caught_up("eu-orders", input.len() as u64)?;
    assert_eq!(description["state"], "running", "{description}");

    // The same logic, natively, over the same records: per key, in order.
    let mut native = TestRunner::<Filter<JsonFilter>>::new(&[("field", "region"), ("value", "eu")])
        .map_err(anyhow::Error::msg)?;
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut expected_failed = Vec::new();
    for (key, value) in &input {
        let run = native.send(Some(key), Some(value), 0);
        if !run.failures.is_empty() {
            expected_failed.push(value.clone());
        }
        for output in run.outputs {
            expected
                .entry(key.clone())
                .or_default()
                .push(output.value_str().unwrap_or_default().to_owned());
        }
    }
    let mut actual: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for record in broker.read_committed("orders-eu", 3)? {
        assert_eq!(
            record.headers.get("source").map(String::as_str),
            Some("test"),
            "headers are kept"
        );
        actual.entry(record.key).or_default().push(record.value);
    }
    assert_eq!(
        actual, expected,
        "every matching record once, in order per key"
    );

    let mut dead: Vec<Consumed> = broker.read_committed("orders-bad", 1)?;
    dead.sort_by_key(|record| record.value.clone());
    expected_failed.sort();
    assert_eq!(
        dead.iter()
            .map(|record| record.value.clone())
            .collect::<Vec<_>>(),
        expected_failed
    );
    assert!(dead.iter().all(|record| {
        record
            .headers
            .get("fjord.error.processor")
            .map(String::as_str)
            == Some("eu-orders")
    }));
    assert!(
        dead[0].headers["fjord.error.message"].contains("expected"),
        "{:?}",
        dead[0].headers
    );

    let group = broker.fjord(&["group", "describe", "fjord-processor-eu-orders"])?;
    assert!(
        group.contains("orders"),
        "the processor's position is a consumer group: {group}"
    );
    let listed = broker.fjord(&["processor", "list"])?;
    assert!(
        listed.contains("eu-orders") && listed.contains("running"),
        "{listed}"
    );
    Ok(())
}

#[test]
fn misbehaving_processors_are_contained_while_clients_go_on() -> anyhow::Result<()> {
    let module = guest_harness::path("sandbox-guest");
    let module = module.to_str().context("UTF-8 path")?;
    let broker = start_broker()?;
    for topic in ["spin", "hoard", "crash", "out", "crashed", "other"] {
        broker.fjord(&["topic", "create", topic])?;
    }
    let deploy = |name: &str, input: &str, mode: &str, extra: &[&str]| -> anyhow::Result<String> {
        let mode = format!("mode={mode}");
        let mut args = vec![
            "processor",
            "deploy",
            name,
            "--input",
            input,
            "--output",
            "out",
            "--config",
            &mode,
        ];
        args.extend_from_slice(extra);
        args.push(module);
        broker.fjord(&args)
    };
    deploy(
        "spinner",
        "spin",
        "loop",
        &["--on-error", "skip", "--limit", "fuel_per_call=20000000"],
    )?;
    deploy(
        "hoarder",
        "hoard",
        "alloc",
        &["--on-error", "skip", "--limit", "memory_bytes=16777216"],
    )?;
    deploy(
        "crasher",
        "crash",
        "panic",
        &["--on-error", "dead-letter:crashed"],
    )?;
    let three: Vec<(String, String)> = ["a", "panic", "b"]
        .iter()
        .map(|value| ("k".to_owned(), (*value).to_owned()))
        .collect();
    for topic in ["spin", "hoard", "crash"] {
        broker.produce(topic, &three)?;
    }

    // Meanwhile a client produces and fetches as usual.
    let others: Vec<(String, String)> = (0..500)
        .map(|index| (format!("k{index}"), format!("v{index}")))
        .collect();
    broker.produce("other", &others)?;
    assert_eq!(broker.read_committed("other", 1)?.len(), 500);

    for name in ["spinner", "hoarder"] {
        let description = broker.wait_caught_up(name, 3)?;
        assert_eq!(
            description["errors"], 3,
            "each record failed alone and was skipped: {description}"
        );
        assert_eq!(description["records_out"], 0);
    }
    let spinner_logs = broker.fjord(&["processor", "logs", "spinner"])?;
    assert!(spinner_logs.contains("fuel"), "{spinner_logs}");
    let hoarder = broker.describe("hoarder")?;
    assert_eq!(hoarder["state"], "running", "{hoarder}");

    broker.wait_caught_up("crasher", 3)?;
    let crashed = broker.read_committed("crashed", 1)?;
    assert_eq!(crashed.len(), 1);
    assert_eq!(crashed[0].value, "panic");
    assert!(
        crashed[0].headers["fjord.error.message"].contains("trapped"),
        "{:?}",
        crashed[0].headers
    );
    let out: Vec<String> = broker
        .read_committed("out", 1)?
        .into_iter()
        .map(|record| record.value)
        .collect();
    assert_eq!(
        out,
        ["a", "b"],
        "the records around the trap went through once"
    );
    Ok(())
}

/// The event time of the `index`th record of an example's input: a second apart, from 1 s
/// (librdkafka reads a timestamp of 0 as none, and the broker then sets its own).
fn event_time_ms(index: usize) -> i64 {
    1_000 * (index as i64 + 1)
}

/// Per (topic, key), the values in order.
type ByTopicAndKey = BTreeMap<(String, String), Vec<String>>;

/// What a native runner gives over `input` (one input partition, in order), with outputs
/// without a topic going to `default_output`.
fn native<P: fjord_sdk::Processor>(
    settings: &[(&str, &str)],
    input: &[(String, String)],
    default_output: &str,
) -> anyhow::Result<ByTopicAndKey> {
    let mut runner = TestRunner::<P>::new(settings).map_err(anyhow::Error::msg)?;
    let mut outputs = ByTopicAndKey::new();
    for (index, (key, value)) in input.iter().enumerate() {
        let run = runner.send(Some(key), Some(value), event_time_ms(index));
        for output in run.outputs {
            let topic = output
                .topic
                .clone()
                .unwrap_or_else(|| default_output.to_owned());
            let key = output
                .key
                .as_deref()
                .map(|key| String::from_utf8_lossy(key).into_owned())
                .unwrap_or_default();
            outputs
                .entry((topic, key))
                .or_default()
                .push(output.value_str().unwrap_or_default().to_owned());
        }
    }
    Ok(outputs)
}

fn read_outputs(broker: &Broker, topics: &[&str]) -> anyhow::Result<ByTopicAndKey> {
    let mut outputs = ByTopicAndKey::new();
    for topic in topics {
        for record in broker.read_committed(topic, 1)? {
            outputs
                .entry(((*topic).to_owned(), record.key))
                .or_default()
                .push(record.value);
        }
    }
    Ok(outputs)
}

#[test]
fn every_example_in_the_broker_gives_what_it_gives_natively() -> anyhow::Result<()> {
    let broker = start_broker()?;
    let deploy = |name: &str,
                  package: &str,
                  input: &str,
                  outputs: &[&str],
                  settings: &[(&str, &str)],
                  records: &[(String, String)]|
     -> anyhow::Result<()> {
        broker.fjord(&["topic", "create", input])?;
        let module = guest_harness::path(package);
        let mut args: Vec<String> = ["processor", "deploy", name, "--input", input]
            .iter()
            .map(|arg| (*arg).to_owned())
            .collect();
        for output in outputs {
            broker.fjord(&["topic", "create", output])?;
            args.extend(["--output".to_owned(), (*output).to_owned()]);
        }
        for (key, value) in settings {
            args.extend(["--config".to_owned(), format!("{key}={value}")]);
        }
        args.extend([
            "--on-error".to_owned(),
            "skip".to_owned(),
            module.to_string_lossy().into_owned(),
        ]);
        broker.fjord(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
        // Event times as the native runner sees them.
        let producer: BaseProducer = broker.config().create()?;
        for (index, (key, value)) in records.iter().enumerate() {
            producer
                .send(
                    BaseRecord::to(input)
                        .key(key)
                        .payload(value)
                        .timestamp(event_time_ms(index)),
                )
                .map_err(|(error, _)| error)?;
        }
        producer.flush(DEADLINE)?;
        broker.wait_caught_up(name, records.len() as u64)?;
        Ok(())
    };

    let texts: Vec<(String, String)> = (0..200)
        .map(|index| {
            (
                format!("user-{}", index % 9),
                format!("user{index}@mail.example.org paid with 4111 1111 1111 1111 ({index})"),
            )
        })
        .collect();
    deploy(
        "redact",
        "pii-redaction",
        "texts",
        &["texts-clean"],
        &[],
        &texts,
    )?;
    let expected =
        native::<fjord_sdk::shapes::Map<pii_redaction::Redact>>(&[], &texts, "texts-clean")?;
    assert_eq!(read_outputs(&broker, &["texts-clean"])?, expected);

    let route_settings = [
        ("field", "region"),
        ("route.eu", "to-eu"),
        ("route.us", "to-us"),
        ("default", "to-rest"),
    ];
    let regions: Vec<(String, String)> = orders(300)
        .into_iter()
        .filter(|(_, value)| value.starts_with('{'))
        .collect();
    deploy(
        "router",
        "route-by-field",
        "regions",
        &["to-eu", "to-us", "to-rest"],
        &route_settings,
        &regions,
    )?;
    let expected = native::<fjord_sdk::shapes::Route<route_by_field::ByField>>(
        &route_settings,
        &regions,
        "to-eu",
    )?;
    assert_eq!(
        read_outputs(&broker, &["to-eu", "to-us", "to-rest"])?,
        expected
    );

    let readings: Vec<(String, String)> = (0..300)
        .map(|index| {
            let unit = ["C", "F", "K"][index % 3];
            let temperature = [21.5, 70.1, 295.0, 9_999.0][index % 4];
            (
                format!("d{}", index % 5),
                format!(
                    r#"{{"device":"d{}","temperature":{temperature},"unit":"{unit}"}}"#,
                    index % 5
                ),
            )
        })
        .collect();
    deploy(
        "units",
        "iot-units",
        "readings",
        &["celsius"],
        &[],
        &readings,
    )?;
    let expected = native::<fjord_sdk::shapes::Map<iot_units::Units>>(&[], &readings, "celsius")?;
    assert_eq!(read_outputs(&broker, &["celsius"])?, expected);

    // Stateful, with timers: decisions per card match in order; alerts, which timers may
    // emit at another batch boundary than the native runner's, match as a whole.
    let fraud_settings = [
        ("max_payments", "2"),
        ("window_ms", "30000"),
        ("alerts_topic", "alerts"),
    ];
    let payments: Vec<(String, String)> = (0..400)
        .map(|index| (format!("card-{}", index % 7), format!("payment {index}")))
        .collect();
    deploy(
        "fraud",
        "fraud-rule",
        "payments",
        &["decisions", "alerts"],
        &fraud_settings,
        &payments,
    )?;
    let expected = native::<fraud_rule::FraudRule>(&fraud_settings, &payments, "decisions")?;
    let actual = read_outputs(&broker, &["decisions", "alerts"])?;
    let of_topic = |outputs: &ByTopicAndKey, topic: &str| -> ByTopicAndKey {
        outputs
            .iter()
            .filter(|((found, _), _)| found == topic)
            .map(|(key, values)| (key.clone(), values.clone()))
            .collect()
    };
    assert_eq!(
        of_topic(&actual, "decisions"),
        of_topic(&expected, "decisions")
    );
    let alerts = of_topic(&actual, "alerts");
    let expected_alerts = of_topic(&expected, "alerts");
    assert!(!expected_alerts.is_empty());
    for ((topic, card), values) in &expected_alerts {
        let found = alerts
            .get(&(topic.clone(), card.clone()))
            .cloned()
            .unwrap_or_default();
        // The native runner's last windows close only if a later record passed them; the
        // broker's too: both saw the same watermark.
        assert_eq!(&found, values, "alerts of {card}");
    }
    Ok(())
}

/// Runs `cargo` in `directory` with its own target directory under the workspace's target.
fn cargo(directory: &Path, args: &[&str]) -> anyhow::Result<()> {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/scaffold");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args(args)
        .current_dir(directory)
        .env("CARGO_TARGET_DIR", &target)
        .status()?;
    ensure!(
        status.success(),
        "cargo {args:?} in {}: {status}",
        directory.display()
    );
    Ok(())
}

#[test]
fn a_new_project_passes_its_test_builds_a_component_and_deploys() -> anyhow::Result<()> {
    let broker = start_broker()?;
    let projects = tempfile::tempdir()?;
    let created = broker.fjord(&[
        "processor",
        "new",
        "shout",
        "--directory",
        &projects.path().to_string_lossy(),
    ])?;
    assert!(created.contains("created"), "{created}");
    let project = projects.path().join("shout");
    cargo(&project, &["test", "--quiet"])?;
    cargo(
        &project,
        &["build", "--release", "--quiet", "--target", "wasm32-wasip2"],
    )?;
    let module = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/scaffold/wasm32-wasip2/release/shout.wasm");
    for topic in ["words", "shouts"] {
        broker.fjord(&["topic", "create", topic])?;
    }
    broker.fjord(&[
        "processor",
        "deploy",
        "shout",
        "--input",
        "words",
        "--output",
        "shouts",
        &module.to_string_lossy(),
    ])?;
    broker.produce(
        "words",
        &[
            ("k".to_owned(), "hello".to_owned()),
            ("k".to_owned(), "fjord".to_owned()),
        ],
    )?;
    broker.wait_caught_up("shout", 2)?;
    let shouts: Vec<String> = broker
        .read_committed("shouts", 1)?
        .into_iter()
        .map(|record| record.value)
        .collect();
    assert_eq!(shouts, ["HELLO", "FJORD"]);
    Ok(())
}

/// The fraud rule under continuous input, the broker killed with SIGKILL 20 times: the
/// decisions, read with read_committed, hold exactly one result per payment, in order per
/// card, equal to a replay of the input through the same code natively (so the state after
/// every crash was the state before it).
#[test]
fn the_fraud_rule_survives_sigkill_with_one_decision_per_payment() -> anyhow::Result<()> {
    const ROUNDS: usize = 20;
    const PER_ROUND: usize = 60;
    let seed = std::env::var("FJORD_TEST_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |elapsed| elapsed.subsec_nanos() as u64)
        });
    println!("FJORD_TEST_SEED={seed}");
    let mut random = seed;
    let mut next_random = move |bound: u64| {
        random = random
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (random >> 33) % bound
    };
    let mut broker = start_broker()?;
    broker.fjord(&["topic", "create", "payments", "-p", "2"])?;
    broker.fjord(&["topic", "create", "decisions", "-p", "2"])?;
    broker.fjord(&["topic", "create", "alerts"])?;
    let settings = [
        ("max_payments", "2"),
        ("window_ms", "60000"),
        ("alerts_topic", "alerts"),
    ];
    let module = guest_harness::path("fraud-rule");
    let mut args = vec![
        "processor",
        "deploy",
        "fraud",
        "--input",
        "payments",
        "--output",
        "decisions",
        "--output",
        "alerts",
    ];
    let settings_args: Vec<String> = settings
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    for setting in &settings_args {
        args.extend(["--config", setting.as_str()]);
    }
    let module_arg = module.to_string_lossy().into_owned();
    args.push(&module_arg);
    broker.fjord(&args)?;

    let mut produced = 0;
    for _ in 0..ROUNDS {
        let producer: BaseProducer = broker
            .config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .create()?;
        for _ in 0..PER_ROUND {
            let card = format!("card-{}", produced % 11);
            let payment = format!("payment {produced}");
            producer
                .send(
                    BaseRecord::to("payments")
                        .key(&card)
                        .payload(&payment)
                        .timestamp(event_time_ms(produced)),
                )
                .map_err(|(error, _)| error)?;
            produced += 1;
        }
        producer.flush(DEADLINE)?;
        drop(producer);
        // Let the processor get somewhere (or nowhere) before the kill.
        std::thread::sleep(Duration::from_millis(next_random(60)));
        broker.kill_and_restart()?;
    }
    let description = broker.wait_caught_up("fraud", produced as u64)?;
    assert_eq!(description["state"], "running", "{description}");

    // The replay: each input partition's payments, in offset order, through native code.
    let input = broker.read_committed("payments", 2)?;
    assert_eq!(input.len(), produced, "every acknowledged payment survived");
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for partition in 0..2 {
        let mut runner =
            TestRunner::<fraud_rule::FraudRule>::new(&settings).map_err(anyhow::Error::msg)?;
        let mut payments: Vec<&Consumed> = input
            .iter()
            .filter(|record| record.partition == partition)
            .collect();
        payments.sort_by_key(|record| record.offset);
        for payment in payments {
            let mut record = runner.record(
                Some(payment.key.as_bytes()),
                Some(payment.value.as_bytes()),
                payment.timestamp_ms,
            );
            record.offset = payment.offset;
            record.partition = partition;
            for output in runner
                .process(vec![record])
                .outputs
                .into_iter()
                .filter(|output| output.topic.is_none())
            {
                expected
                    .entry(payment.key.clone())
                    .or_default()
                    .push(output.value_str().unwrap_or_default().to_owned());
            }
        }
    }
    let mut actual: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for decision in broker.read_committed("decisions", 2)? {
        actual.entry(decision.key).or_default().push(decision.value);
    }
    let decisions: usize = actual.values().map(Vec::len).sum();
    assert_eq!(
        decisions, produced,
        "one decision per payment (seed {seed})"
    );
    assert_eq!(
        actual, expected,
        "the decisions of a replay, in order per card (seed {seed})"
    );
    Ok(())
}
