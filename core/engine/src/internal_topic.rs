//! Reading an internal topic back at start-up: the group coordinator (`__consumer_offsets`)
//! and the transaction coordinator (`__transaction_state`) each fold their partition, from
//! its log start to its high watermark, into memory.

use fjord_partition::Offset;
use fjord_record::Batch;

use crate::Result;
use crate::blocking::BlockingPool;
use crate::groups::offsets::invalid_batch;
use crate::partition::{Isolation, PartitionStorage, ReadRange};

/// How much of the partition is read at a time.
const READ_BYTES: usize = 1024 * 1024;

/// Calls `each` on every batch of `partition` (of internal topic `topic`) in offset order,
/// up to the high watermark. Batches read from a file are copied on `pool`.
pub(crate) async fn read_all(
    partition: &dyn PartitionStorage,
    pool: &BlockingPool,
    topic: &'static str,
    mut each: impl FnMut(&Batch<'_>) -> Result<()>,
) -> Result<()> {
    let offsets = partition.offsets()?;
    let mut offset = offsets.log_start_offset;
    while offset < offsets.high_watermark {
        let range = ReadRange {
            offset,
            max_bytes: READ_BYTES,
            min_one_batch: true,
            isolation: Isolation::HighWatermark,
        };
        let batches = partition.read(range).await?.batches;
        if batches.is_empty() {
            break;
        }
        let path = std::path::Path::new(topic);
        let buffer = pool
            .run(move || batches.into_bytes().map_err(crate::error::io(path)))
            .await?;
        for batch in fjord_record::batches(&buffer) {
            let batch = batch.map_err(invalid_batch)?;
            offset = offset.max(Offset(batch.header.next_offset()));
            each(&batch)?;
        }
    }
    Ok(())
}
