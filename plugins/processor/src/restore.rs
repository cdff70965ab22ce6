//! Where a task starts: its state store rebuilt from the changelog, its input position from
//! the processor's group (or the deployment's start policy).

use fjord_engine::{Engine, Offset, PartitionIndex};

use crate::changelog;
use crate::error::{Error, Result};
use crate::spec::{ProcessorSpec, StartFrom};
use crate::state::{StateLimits, StateStore};

const READ_BYTES: usize = 1024 * 1024;

/// The store as the changelog partition's committed records leave it.
pub(crate) async fn state(
    engine: &Engine,
    changelog_topic: &str,
    partition: PartitionIndex,
    limits: StateLimits,
) -> Result<StateStore> {
    let mut state = StateStore::new(limits);
    let mut offset = engine.offsets(changelog_topic, partition)?.log_start_offset;
    loop {
        let read = engine
            .read_committed(changelog_topic, partition, offset, READ_BYTES)
            .await?;
        for record in &read.records {
            let change = changelog::decode(
                record.offset.0,
                record.key.as_deref(),
                record.value.as_deref(),
            )?;
            state.restore(change);
        }
        if read.next_offset <= offset {
            return Ok(state);
        }
        offset = read.next_offset;
    }
}

/// The committed position of the processor's group, or where the start policy says.
pub(crate) async fn position(
    engine: &Engine,
    spec: &ProcessorSpec,
    partition: PartitionIndex,
) -> Result<Offset> {
    let asked = Some(vec![(spec.input.clone(), vec![partition])]);
    let committed = engine
        .groups()
        .fetch_offsets(&spec.group_id(), asked)
        .into_iter()
        .find_map(|(_, _, found)| found);
    if let Some(committed) = committed {
        return Ok(committed.offset);
    }
    let offsets = engine.offsets(&spec.input, partition)?;
    Ok(match spec.start_from {
        StartFrom::Earliest => offsets.log_start_offset,
        StartFrom::Latest => offsets.last_stable_offset,
        StartFrom::Timestamp { timestamp_ms } => engine
            .offset_for_timestamp(&spec.input, partition, timestamp_ms)
            .await?
            .map_or(offsets.last_stable_offset, |found| found.offset),
    })
}

/// Whether an engine error says the position was removed by retention.
pub(crate) fn is_out_of_range(error: &Error) -> bool {
    matches!(
        error,
        Error::Engine(fjord_engine::Error::Partition(
            fjord_engine::PartitionError::OffsetOutOfRange { .. }
        ))
    )
}
