//! Encodes a fetch response around its records without copying them: the kafka-protocol
//! codec writes every field but the records, which go into the frame as file ranges (sent
//! with `sendfile`) or as the bytes they already are.
//!
//! Fetch versions 4 to 18 are encoded; the test below checks every one of them byte for byte
//! against the codec's own encoding of the same response. From v13 a topic is named by its
//! id (KIP-516); v16's `node_endpoints` is a tagged field the broker never sets.

use bytes::BufMut;
use fjord_engine::Batches;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseHeader};
use kafka_protocol::protocol::Encodable;

use crate::outgoing::{FrameBuilder, Outgoing};
use crate::{Error, Result};

/// The first flexible (KIP-482) Fetch version.
const FLEXIBLE_VERSION_MIN: i16 = 12;
/// The first Fetch version naming topics by id.
const TOPIC_ID_VERSION_MIN: i16 = 13;
/// The newest Fetch version encoded.
pub(crate) const VERSION_MAX: i16 = 18;

/// Encodes `response` as a frame for `correlation_id`; `records` are the partitions'
/// records in the order the response lists the partitions, whose own `records` must be
/// `None`.
pub(crate) fn encode(
    correlation_id: i32,
    version: i16,
    response: &FetchResponse,
    records: Vec<Batches>,
) -> Result<Outgoing> {
    if !(4..=VERSION_MAX).contains(&version) {
        return Err(encode_error(format!("fetch version {version}")));
    }
    if !response.node_endpoints.is_empty() || !response.unknown_tagged_fields.is_empty() {
        return Err(encode_error("fetch response with tagged fields set".into()));
    }
    let flexible = version >= FLEXIBLE_VERSION_MIN;
    let mut frame = FrameBuilder::new();
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(
            frame.buffer(),
            ApiKey::Fetch.response_header_version(version),
        )
        .map_err(|e| encode_error(e.to_string()))?;
    let buffer = frame.buffer();
    buffer.put_i32(response.throttle_time_ms);
    if version >= 7 {
        buffer.put_i16(response.error_code);
        buffer.put_i32(response.session_id);
    }
    put_length(buffer, flexible, response.responses.len())?;
    let mut records = records.into_iter();
    for topic in &response.responses {
        encode_topic(&mut frame, version, topic, &mut records)?;
    }
    if flexible {
        frame.buffer().put_u8(0); // no tagged fields
    }
    frame.finish()
}

fn encode_topic(
    frame: &mut FrameBuilder,
    version: i16,
    topic: &FetchableTopicResponse,
    records: &mut impl Iterator<Item = Batches>,
) -> Result<()> {
    let flexible = version >= FLEXIBLE_VERSION_MIN;
    let buffer = frame.buffer();
    if version >= TOPIC_ID_VERSION_MIN {
        buffer.put_slice(topic.topic_id.as_bytes());
        return encode_partitions(frame, version, topic, records);
    }
    let name = topic.topic.as_bytes();
    if flexible {
        put_length(buffer, true, name.len())?;
    } else {
        let length = i16::try_from(name.len())
            .map_err(|_| encode_error(format!("topic name of {} bytes", name.len())))?;
        buffer.put_i16(length);
    }
    buffer.put_slice(name);
    encode_partitions(frame, version, topic, records)
}

fn encode_partitions(
    frame: &mut FrameBuilder,
    version: i16,
    topic: &FetchableTopicResponse,
    records: &mut impl Iterator<Item = Batches>,
) -> Result<()> {
    let flexible = version >= FLEXIBLE_VERSION_MIN;
    put_length(frame.buffer(), flexible, topic.partitions.len())?;
    for partition in &topic.partitions {
        let fetched = records
            .next()
            .ok_or_else(|| encode_error("fewer records than partitions".into()))?;
        encode_partition(frame, version, partition, fetched)?;
    }
    if flexible {
        frame.buffer().put_u8(0); // no tagged fields
    }
    Ok(())
}

/// The codec encodes the partition with null records, which it writes last (before the
/// tagged fields, when flexible); that null is replaced by the real records.
fn encode_partition(
    frame: &mut FrameBuilder,
    version: i16,
    partition: &PartitionData,
    fetched: Batches,
) -> Result<()> {
    let flexible = version >= FLEXIBLE_VERSION_MIN;
    let untagged = partition.diverging_epoch == Default::default()
        && partition.current_leader == Default::default()
        && partition.snapshot_id == Default::default()
        && partition.unknown_tagged_fields.is_empty();
    if partition.records.is_some() || !untagged {
        return Err(encode_error(
            "fetch partition with records or tagged fields set".into(),
        ));
    }
    let buffer = frame.buffer();
    partition
        .encode(buffer, version)
        .map_err(|e| encode_error(e.to_string()))?;
    // Null records: a zero varint then no tagged fields (flexible), or a length of -1.
    let null_records_bytes = if flexible { 2 } else { 4 };
    buffer.truncate(buffer.len() - null_records_bytes);
    put_length(buffer, flexible, fetched.len())?;
    match fetched {
        Batches::File(slice) => frame.push_file(slice),
        Batches::Memory(bytes) => frame.push_bytes(bytes),
    }
    if flexible {
        frame.buffer().put_u8(0); // no tagged fields
    }
    Ok(())
}

/// An array or bytes length: `i32`, or unsigned varint of length + 1 when flexible.
fn put_length(buffer: &mut bytes::BytesMut, flexible: bool, length: usize) -> Result<()> {
    let length = u32::try_from(length)
        .ok()
        .filter(|&l| l < i32::MAX as u32)
        .ok_or_else(|| encode_error(format!("length {length}")))?;
    if flexible {
        let mut value = length + 1;
        while value >= 0x80 {
            buffer.put_u8((value as u8) | 0x80);
            value >>= 7;
        }
        buffer.put_u8(value as u8);
    } else {
        buffer.put_i32(length as i32);
    }
    Ok(())
}

fn encode_error(reason: String) -> Error {
    Error::Encode { reason }
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use std::io::Write;
    use std::sync::Arc;

    use fjord_engine::{Batches, FileRange, Offset};
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, FetchableTopicResponse, PartitionData,
    };
    use kafka_protocol::messages::{
        ApiKey, BrokerId, FetchResponse, ProducerId, ResponseHeader, TopicName,
    };
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn topic(name: &str, partitions: Vec<PartitionData>) -> FetchableTopicResponse {
        FetchableTopicResponse::default()
            .with_topic(TopicName(StrBytes::from_string(name.into())))
            .with_topic_id(uuid::Uuid::from_u128(
                0x1234_5678_9abc_def0 + name.len() as u128,
            ))
            .with_partitions(partitions)
    }

    fn partition(index: i32, version: i16) -> PartitionData {
        let aborted = AbortedTransaction::default()
            .with_producer_id(ProducerId(7))
            .with_first_offset(3);
        PartitionData::default()
            .with_partition_index(index)
            .with_error_code(if index == 2 { 1 } else { 0 })
            .with_high_watermark(1000 + i64::from(index))
            .with_last_stable_offset(900)
            .with_log_start_offset(if version >= 5 { 5 } else { -1 })
            .with_aborted_transactions(Some(vec![aborted]))
            .with_preferred_read_replica(BrokerId(-1))
            .with_records(None)
    }

    /// Stored batches as a range of a real file, after some other bytes.
    fn slice() -> anyhow::Result<(tempfile::TempDir, Batches)> {
        let dir = tempfile::tempdir()?;
        let mut builder = fjord_record::BatchBuilder::new(fjord_record::Compression::None);
        for i in 0..3 {
            let key = format!("k{i}");
            builder.push(&fjord_record::NewRecord {
                timestamp_ms: i,
                key: Some(key.as_bytes()),
                value: Some(&[b'v'; 300]),
                headers: &[],
            })?;
        }
        let batch = builder.build()?;
        let mut file = std::fs::File::create_new(dir.path().join("segment"))?;
        file.write_all(b"bytes before the range")?;
        file.write_all(&batch)?;
        file.sync_all()?;
        let file = std::fs::File::open(dir.path().join("segment"))?;
        let range = FileRange::new(Arc::new(file), 22, batch.len(), Offset(0)..Offset(3));
        Ok((dir, Batches::File(range)))
    }

    #[test]
    fn every_version_encodes_as_the_codec_does() -> anyhow::Result<()> {
        let (_dir, stored) = slice()?;
        let stored_bytes = match &stored {
            Batches::File(slice) => Bytes::from(slice.read_to_vec()?),
            Batches::Memory(bytes) => bytes.clone(),
        };
        let copied = Bytes::from_static(b"not really a batch, but bytes are bytes");
        for version in 4..=super::VERSION_MAX {
            let response = FetchResponse::default()
                .with_throttle_time_ms(0)
                .with_session_id(if version >= 7 { 77 } else { 0 })
                .with_responses(vec![
                    topic("one", vec![partition(0, version), partition(1, version)]),
                    topic("two", vec![partition(2, version)]),
                ]);
            let records = vec![
                stored.clone(),
                Batches::Memory(copied.clone()),
                Batches::Memory(Bytes::new()),
            ];
            let ours = super::encode(42, version, &response, records)?.to_vec()?;

            let mut expected = response.clone();
            let all = [stored_bytes.clone(), copied.clone(), Bytes::new()];
            let mut all = all.into_iter();
            for topic in &mut expected.responses {
                for partition in &mut topic.partitions {
                    partition.records = all.next();
                }
            }
            let mut body = BytesMut::new();
            ResponseHeader::default()
                .with_correlation_id(42)
                .encode(&mut body, ApiKey::Fetch.response_header_version(version))?;
            expected.encode(&mut body, version)?;
            let mut framed = (body.len() as i32).to_be_bytes().to_vec();
            framed.extend_from_slice(&body);
            assert_eq!(ours, framed, "fetch version {version}");
        }
        Ok(())
    }

    #[test]
    fn a_partition_with_fields_the_encoder_cannot_place_is_refused() {
        let response = FetchResponse::default().with_responses(vec![topic(
            "t",
            vec![partition(0, 12).with_records(Some(Bytes::new()))],
        )]);
        let records = vec![Batches::Memory(Bytes::new())];
        assert!(super::encode(1, 12, &response, records).is_err());
    }
}
