//! Property test against a reference model: random appends, reads, truncations, DeleteRecords,
//! retention, compaction and restarts (clean and crashed), checked against a `BTreeMap`.

use std::collections::BTreeMap;

use fjord_log::{Log, TopicConfig};
use fjord_record::Compression;
use proptest::prelude::*;

use crate::support::{Rec, batch, decode, pool, read_all, restart};

#[derive(Debug, Clone)]
enum Op {
    Append {
        records: Vec<(u8, Option<u16>)>,
        codec: Compression,
    },
    Read {
        at: u16,
        max_bytes: u16,
    },
    Truncate {
        at: u16,
    },
    DeleteRecords {
        at: u16,
    },
    Retention,
    Compact,
    Restart {
        clean: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (proptest::collection::vec((0u8..6, proptest::option::weighted(0.9, 0u16..300)), 1..8),
              proptest::sample::select(Compression::ALL.to_vec()))
            .prop_map(|(records, codec)| Op::Append { records, codec }),
        3 => (any::<u16>(), 1u16..2_000).prop_map(|(at, max_bytes)| Op::Read { at, max_bytes }),
        1 => any::<u16>().prop_map(|at| Op::Truncate { at }),
        1 => any::<u16>().prop_map(|at| Op::DeleteRecords { at }),
        1 => Just(Op::Retention),
        1 => Just(Op::Compact),
        1 => any::<bool>().prop_map(|clean| Op::Restart { clean }),
    ]
}

fn config() -> TopicConfig {
    TopicConfig {
        cleanup_policy: fjord_log::CleanupPolicy::COMPACT_DELETE,
        retention_bytes: Some(12_000),
        delete_retention_ms: i64::MAX / 4,
        ..crate::support::small_config()
    }
}

struct Model {
    /// Records at or past the log start offset, by offset.
    records: BTreeMap<i64, Rec>,
    /// (base offset, last offset) of every batch appended and not truncated.
    batches: Vec<(i64, i64)>,
}

fn pick(at: u16, low: i64, high: i64) -> i64 {
    if high <= low {
        low
    } else {
        low + i64::from(at) % (high - low + 1)
    }
}

fn run(ops: Vec<Op>) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut log = Log::create(dir.path(), config(), pool(), 0)?;
    let mut model = Model {
        records: BTreeMap::new(),
        batches: Vec::new(),
    };
    let mut timestamp = 1_000i64;
    for op in ops {
        match op {
            Op::Append { records, codec } => {
                let values: Vec<(Vec<u8>, Option<Vec<u8>>)> = records
                    .iter()
                    .map(|(k, v)| (vec![b'k', *k], v.map(|len| vec![*k; usize::from(len)])))
                    .collect();
                let encoded: Vec<_> = values
                    .iter()
                    .map(|(k, v)| (Some(k.as_slice()), v.as_deref(), timestamp))
                    .collect();
                let info = log.append(&batch(&encoded, codec), 0, timestamp)?;
                anyhow::ensure!(info.base_offset == log.log_end_offset() - values.len() as i64);
                for (i, (key, value)) in values.into_iter().enumerate() {
                    let offset = info.base_offset + i as i64;
                    model.records.insert(
                        offset,
                        Rec {
                            offset,
                            timestamp,
                            key: Some(key),
                            value,
                        },
                    );
                }
                model.batches.push((info.base_offset, info.last_offset));
                log.set_high_watermark(log.log_end_offset());
                timestamp += 1;
            }
            Op::Read { at, max_bytes } => {
                let offset = pick(at, log.log_start_offset(), log.log_end_offset());
                let bytes = log.read(offset, usize::from(max_bytes), i64::MAX)?;
                let got = decode(&bytes)?;
                let got: Vec<&Rec> = got.iter().filter(|r| r.offset >= offset).collect();
                let want: Vec<&Rec> = model
                    .records
                    .range(offset..)
                    .map(|(_, r)| r)
                    .take(got.len())
                    .collect();
                anyhow::ensure!(got == want, "read at {offset}: {got:?} vs {want:?}");
                // A compacted batch may hold only records below `offset`; a consumer then
                // moves past its last offset. But data that exists is never an empty read.
                let exists = model.records.range(offset..).next().is_some();
                anyhow::ensure!(!exists || !bytes.is_empty(), "empty read at {offset}");
            }
            Op::Truncate { at } => {
                let offset = pick(at, log.log_start_offset(), log.log_end_offset());
                log.truncate_to(offset)?;
                model.batches.retain(|(_, last)| *last < offset);
                let end = model.batches.last().map_or(0, |(_, last)| last + 1);
                model.records.retain(|o, _| *o < end);
                anyhow::ensure!(
                    log.log_end_offset() <= offset.max(log.log_start_offset()),
                    "end {} after truncating to {offset}",
                    log.log_end_offset()
                );
            }
            Op::DeleteRecords { at } => {
                let offset = pick(at, log.log_start_offset(), log.high_watermark());
                log.delete_records(offset)?;
                model.records.retain(|o, _| *o >= offset);
            }
            Op::Retention => {
                log.apply_retention(timestamp)?;
                let start = log.log_start_offset();
                model.records.retain(|o, _| *o >= start);
            }
            Op::Compact => {
                log.compact(timestamp)?;
                check_compacted(&log, &model)?;
                // Compaction only ever removes records; the model now follows the log.
                model.records = read_all(&log)?.into_iter().map(|r| (r.offset, r)).collect();
            }
            Op::Restart { clean } => {
                let (reopened, report) = restart(log, dir.path(), config(), clean, timestamp)?;
                anyhow::ensure!(
                    report.truncated.is_none(),
                    "a restart without damage truncated: {report:?}"
                );
                log = reopened;
                log.set_high_watermark(log.log_end_offset());
            }
        }
        let start = log.log_start_offset();
        model.records.retain(|o, _| *o >= start);
        let all = read_all(&log)?;
        let expected: Vec<Rec> = model.records.values().cloned().collect();
        anyhow::ensure!(
            all == expected,
            "log differs from the model\n log:   {all:?}\n model: {expected:?}"
        );
    }
    Ok(())
}

/// After compaction every record left matches the model, and the latest record of every key
/// in the sealed segments survived.
fn check_compacted(log: &Log, model: &Model) -> anyhow::Result<()> {
    let left: BTreeMap<i64, Rec> = read_all(log)?.into_iter().map(|r| (r.offset, r)).collect();
    for (offset, record) in &left {
        anyhow::ensure!(
            model.records.get(offset) == Some(record),
            "compaction changed offset {offset}"
        );
    }
    let mut latest: BTreeMap<&Option<Vec<u8>>, i64> = BTreeMap::new();
    for record in model.records.values() {
        latest.insert(&record.key, record.offset);
    }
    for offset in latest.values() {
        anyhow::ensure!(
            left.contains_key(offset),
            "latest record at {offset} was compacted away"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn log_matches_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops).map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
    }
}
