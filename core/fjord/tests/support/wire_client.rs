//! A Kafka client on the kafka-protocol codec (generated from Kafka 4.1's schemas) over the
//! raw wire, for tests of versions and fields no real client here exercises. Included by
//! path (`#[path]`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use uuid::Uuid;

use crate::fjord_serve::FjordServe;

pub(crate) const UNKNOWN_TOPIC_ID: i16 = 100;

/// One connection speaking the codec.
pub(crate) struct Client {
    stream: TcpStream,
    correlation_id: i32,
}

impl Client {
    pub(crate) fn connect(broker: &FjordServe) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(&broker.bootstrap)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Self {
            stream,
            correlation_id: 0,
        })
    }

    pub(crate) fn call<Response: Decodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        request: &impl Encodable,
    ) -> anyhow::Result<Response> {
        self.correlation_id += 1;
        let mut body = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("wire-test")))
            .encode(&mut body, api_key.request_header_version(version))?;
        request.encode(&mut body, version)?;
        self.stream.write_all(&(body.len() as i32).to_be_bytes())?;
        self.stream.write_all(&body)?;
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size)?;
        let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut frame)?;
        let mut frame = Bytes::from(frame);
        let header = ResponseHeader::decode(&mut frame, api_key.response_header_version(version))?;
        ensure!(
            header.correlation_id == self.correlation_id,
            "correlation id"
        );
        let response = Response::decode(&mut frame, version)
            .with_context(|| format!("{api_key:?} v{version} response"))?;
        ensure!(frame.is_empty(), "{api_key:?} v{version}: bytes left over");
        Ok(response)
    }
}

pub(crate) fn name(text: &str) -> TopicName {
    TopicName(StrBytes::from_string(text.to_string()))
}

/// A batch of `count` records, timestamps `base_ms + i`.
pub(crate) fn batch(count: i64, base_ms: i64) -> anyhow::Result<Bytes> {
    let mut builder = fjord_record::BatchBuilder::new(fjord_record::Compression::None);
    for i in 0..count {
        let value = format!("value-{i}");
        builder.push(&fjord_record::NewRecord {
            timestamp_ms: base_ms + i,
            key: Some(b"key"),
            value: Some(value.as_bytes()),
            headers: &[],
        })?;
    }
    Ok(Bytes::from(builder.build()?))
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub(crate) fn create_topic(client: &mut Client, topic: &str) -> anyhow::Result<Uuid> {
    let request = CreateTopicsRequest::default()
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(name(topic))
                .with_num_partitions(1)
                .with_replication_factor(1),
        ])
        .with_timeout_ms(30_000);
    let response: CreateTopicsResponse = client.call(ApiKey::CreateTopics, 7, &request)?;
    let created = &response.topics[0];
    ensure!(created.error_code == 0, "create: {}", created.error_code);
    Ok(created.topic_id)
}

/// (error code, base offset) of a one-partition produce.
pub(crate) fn produce(
    client: &mut Client,
    version: i16,
    topic: TopicProduceData,
    records: Bytes,
) -> anyhow::Result<(i16, i64)> {
    let topic = topic.with_partition_data(vec![
        PartitionProduceData::default()
            .with_index(0)
            .with_records(Some(records)),
    ]);
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![topic]);
    let response: ProduceResponse = client.call(ApiKey::Produce, version, &request)?;
    let partition = &response.responses[0].partition_responses[0];
    Ok((partition.error_code, partition.base_offset))
}
