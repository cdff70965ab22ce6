//! Compaction of a log with transactions, against a model: nothing at or past the last
//! stable offset is touched, aborted records go, the latest committed record of every key
//! stays, an ABORT marker stays, and a COMMIT marker stays while its transaction has records
//! (and, after `delete.retention.ms`, only then); through restarts of both kinds.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use fjord_log::Log;
use fjord_record::{BatchBuilder, Compression, ControlType, NewRecord, Records};
use proptest::prelude::*;

use crate::support::{compact_config, pool, restart};

const PRODUCERS: usize = 3;
/// Timestamps of records and markers; rounds run either at `NOW_EARLY` (within
/// `delete.retention.ms` of them) or at `NOW_LATE` (past it).
const TIMESTAMP_MS: i64 = 1;
const NOW_EARLY: i64 = 2;
const NOW_LATE: i64 = 1_000_000;

#[derive(Debug, Clone)]
enum Step {
    /// A transactional batch from `producer`, one record per key listed.
    Produce {
        producer: usize,
        keys: Vec<u8>,
    },
    /// A batch outside any transaction.
    Plain {
        keys: Vec<u8>,
    },
    End {
        producer: usize,
        commit: bool,
    },
    Compact {
        late: bool,
    },
    Restart {
        clean: bool,
    },
}

fn keys() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(0u8..4, 1..6)
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (0..PRODUCERS, keys()).prop_map(|(producer, keys)| Step::Produce { producer, keys }),
        2 => keys().prop_map(|keys| Step::Plain { keys }),
        3 => (0..PRODUCERS, any::<bool>()).prop_map(|(producer, commit)| Step::End { producer, commit }),
        2 => any::<bool>().prop_map(|late| Step::Compact { late }),
        1 => any::<bool>().prop_map(|clean| Step::Restart { clean }),
    ]
}

/// A transaction: its producer and its number among that producer's transactions.
type Txn = (usize, u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Open,
    Committed,
    Aborted,
}

#[derive(Debug, Default)]
struct Model {
    /// Every record ever written: offset -> (key, transaction).
    records: BTreeMap<i64, (u8, Option<Txn>)>,
    /// Every marker written: offset -> transaction.
    markers: BTreeMap<i64, Txn>,
    outcomes: HashMap<Txn, Outcome>,
    /// Each producer's current transaction number, next sequence and open transaction start.
    current: [u32; PRODUCERS],
    sequences: [i32; PRODUCERS],
    open: [Option<i64>; PRODUCERS],
}

impl Model {
    fn aborted(&self, txn: Option<Txn>) -> bool {
        txn.is_some_and(|t| self.outcomes.get(&t) == Some(&Outcome::Aborted))
    }

    fn last_stable_offset(&self, end: i64) -> i64 {
        self.open.iter().flatten().min().copied().unwrap_or(end)
    }
}

fn batch(producer: Option<usize>, sequence: i32, keys: &[u8]) -> Vec<u8> {
    let mut builder = BatchBuilder::new(Compression::None);
    if let Some(producer) = producer {
        builder.producer_id = producer as i64 + 1;
        builder.producer_epoch = 0;
        builder.base_sequence = sequence;
        builder.transactional = true;
    }
    for key in keys {
        builder
            .push(&NewRecord {
                timestamp_ms: TIMESTAMP_MS,
                key: Some(&[*key]),
                value: Some(b"some value"),
                headers: &[],
            })
            .expect("small batch");
    }
    builder.build().expect("small batch")
}

/// What the log holds: record offsets with their keys, and marker offsets.
fn contents(log: &Log) -> (BTreeMap<i64, u8>, BTreeSet<i64>) {
    let (mut records, mut markers) = (BTreeMap::new(), BTreeSet::new());
    let mut offset = log.log_start_offset();
    // A read stops at the end of a segment: read on from where it ended.
    while offset < log.log_end_offset() {
        let bytes = log.read(offset, 1 << 24, i64::MAX).expect("read");
        if bytes.is_empty() {
            break;
        }
        for batch in fjord_record::batches(&bytes) {
            let batch = batch.expect("stored batch");
            offset = batch.header.next_offset();
            if batch.header.attributes.is_control() {
                markers.insert(batch.header.base_offset);
                continue;
            }
            let body = batch.decompressed_record_bytes(1 << 24).expect("records");
            for record in Records::new(&body) {
                let record = record.expect("record");
                let at = batch.header.base_offset + i64::from(record.offset_delta);
                records.insert(at, record.key.expect("keyed")[0]);
            }
        }
    }
    (records, markers)
}

/// The invariants, given the offset below which compaction has cleaned.
fn check(log: &Log, model: &Model, cleaned: i64, late: bool) -> Result<(), TestCaseError> {
    let end = log.log_end_offset();
    prop_assert_eq!(log.last_stable_offset(), model.last_stable_offset(end));
    let (records, markers) = contents(log);
    for (offset, key) in &records {
        prop_assert_eq!(
            model.records.get(offset).map(|r| r.0),
            Some(*key),
            "offset {}",
            offset
        );
    }
    // The latest record of each key among those not aborted, over the whole log.
    let mut latest: HashMap<u8, i64> = HashMap::new();
    let mut latest_cleaned: HashMap<u8, i64> = HashMap::new();
    for (offset, (key, txn)) in &model.records {
        if !model.aborted(*txn) {
            latest.insert(*key, *offset);
            if *offset < cleaned {
                latest_cleaned.insert(*key, *offset);
            }
        }
    }
    for (offset, (key, txn)) in &model.records {
        let present = records.contains_key(offset);
        if *offset >= cleaned {
            prop_assert!(
                present,
                "record {} past the cleaned range was removed",
                offset
            );
        } else if model.aborted(*txn) {
            prop_assert!(!present, "aborted record {} was kept", offset);
        } else {
            let is_latest = latest_cleaned.get(key) == Some(offset);
            prop_assert_eq!(present, is_latest, "record {} (key {})", offset, key);
        }
        if latest.get(key) == Some(offset) {
            prop_assert!(present, "the latest record of key {} is gone", key);
        }
    }
    for (offset, txn) in &model.markers {
        let has_records = model
            .records
            .iter()
            .any(|(o, (_, t))| *t == Some(*txn) && records.contains_key(o));
        let present = markers.contains(offset);
        let abort = model.outcomes.get(txn) == Some(&Outcome::Aborted);
        if *offset >= cleaned || has_records || abort {
            prop_assert!(present, "marker {} of {:?} was removed", offset, txn);
        } else if late {
            prop_assert!(
                !present,
                "marker {} of {:?} outlived its records",
                offset,
                txn
            );
        }
    }
    Ok(())
}

fn apply(log: &mut Log, model: &mut Model, step: &Step) {
    match step {
        Step::Produce { producer, keys } => {
            let p = *producer;
            let base = log.log_end_offset();
            log.append(&batch(Some(p), model.sequences[p], keys), 0, 0)
                .expect("append");
            model.sequences[p] += keys.len() as i32;
            model.open[p].get_or_insert(base);
            let txn = (p, model.current[p]);
            model.outcomes.insert(txn, Outcome::Open);
            for (i, key) in keys.iter().enumerate() {
                model.records.insert(base + i as i64, (*key, Some(txn)));
            }
        }
        Step::Plain { keys } => {
            let base = log.log_end_offset();
            log.append(&batch(None, -1, keys), 0, 0).expect("append");
            for (i, key) in keys.iter().enumerate() {
                model.records.insert(base + i as i64, (*key, None));
            }
        }
        Step::End { producer, commit } => {
            let p = *producer;
            let kind = if *commit {
                ControlType::Commit
            } else {
                ControlType::Abort
            };
            let marker = kind
                .marker_batch(p as i64 + 1, 0, 0, TIMESTAMP_MS)
                .expect("marker");
            let at = log.append(&marker, 0, 0).expect("marker").base_offset;
            let txn = (p, model.current[p]);
            if model.open[p].take().is_some() {
                let outcome = if *commit {
                    Outcome::Committed
                } else {
                    Outcome::Aborted
                };
                model.outcomes.insert(txn, outcome);
                model.markers.insert(at, txn);
                model.current[p] += 1;
            }
        }
        Step::Compact { .. } | Step::Restart { .. } => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn compaction_respects_transactions(steps in proptest::collection::vec(step(), 1..50)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = compact_config(); // 1 KiB segments, delete.retention.ms 1 s
        let mut log = Log::create(dir.path(), config.clone(), pool(), 0).expect("create");
        let mut model = Model::default();
        let (mut cleaned, mut late) = (0, false);
        for step in &steps {
            apply(&mut log, &mut model, step);
            match step {
                Step::Compact { late: now_late } => {
                    let now = if *now_late { NOW_LATE } else { NOW_EARLY };
                    let outcome = log.compact(now).expect("compact");
                    if outcome.cleaned_end_offset > 0 {
                        cleaned = outcome.cleaned_end_offset;
                        late = *now_late;
                    }
                }
                Step::Restart { clean } => {
                    log = restart(log, dir.path(), config.clone(), *clean, 0)
                        .expect("reopen")
                        .0;
                }
                _ => {}
            }
            let end = log.log_end_offset();
            log.set_high_watermark(end);
            check(&log, &model, cleaned, late)?;
        }
    }
}
