//! DeleteRecords: moves partitions' log start offsets forward (-1 means the high watermark).

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::{Context, blocking};
use crate::Result;
use crate::codes::error_code;

pub(crate) fn handle(context: &Context, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let result = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index);
                    match blocking(|| delete(context, &topic.name, p.partition_index, p.offset)) {
                        Ok(low_watermark) => result.with_low_watermark(low_watermark),
                        Err(error) => result
                            .with_low_watermark(-1)
                            .with_error_code(error_code(&error)),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}

fn delete(context: &Context, topic: &str, index: i32, offset: i64) -> Result<i64> {
    let topic = context.topics().require(topic)?;
    let partition = topic.partition(index)?;
    let offsets = partition.offsets()?;
    let offset = if offset == -1 {
        offsets.high_watermark
    } else {
        offset
    };
    if offset < 0 || offset > offsets.high_watermark {
        return Err(fjord_log::Error::OffsetOutOfRange {
            offset,
            log_start_offset: offsets.log_start_offset,
            log_end_offset: offsets.high_watermark,
        }
        .into());
    }
    partition.delete_records(offset)
}
