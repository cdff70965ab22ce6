//! DeleteRecords: moves partitions' log start offsets forward (-1 means the high watermark).

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::Context;
use crate::codes::error_code;
use fjord_engine::{Offset, PartitionIndex, Result};

pub(crate) async fn handle(
    context: &Context,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let result =
                DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
            partitions.push(
                match delete(context, &topic.name, p.partition_index, p.offset).await {
                    Ok(low_watermark) => result.with_low_watermark(low_watermark),
                    Err(error) => result
                        .with_low_watermark(-1)
                        .with_error_code(error_code(&error)),
                },
            );
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}

async fn delete(context: &Context, topic: &str, index: i32, offset: i64) -> Result<i64> {
    let index = PartitionIndex(index);
    let offsets = context.engine().offsets(topic, index)?;
    let offset = if offset == -1 {
        offsets.high_watermark.0
    } else {
        offset
    };
    if offset < 0 || offset > offsets.high_watermark.0 {
        return Err(fjord_engine::PartitionError::OffsetOutOfRange {
            offset,
            log_start_offset: offsets.log_start_offset.0,
            log_end_offset: offsets.high_watermark.0,
        }
        .into());
    }
    let low_watermark = context
        .engine()
        .delete_records(topic, index, Offset(offset))
        .await?;
    Ok(low_watermark.0)
}
