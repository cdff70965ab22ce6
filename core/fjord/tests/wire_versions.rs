//! The versions Fjord advertises beyond what real clients negotiate today, over the raw
//! wire: a client built on the kafka-protocol codec (generated from Kafka 4.1's schemas)
//! against a real `fjord serve`. librdkafka 2.16 (confluent-kafka, `tests/clients`) covers
//! Fetch v16, Metadata v13, Produce v10 and ListOffsets v7; this covers the rest: Produce
//! v11-v13 (v13 by topic id), Fetch v17-v18 (by topic id), ListOffsets v8-v10, Metadata v13
//! by topic id, DeleteTopics v6 (by id), ApiVersions v4, DescribeCluster v2.

#[allow(dead_code)] // each includer uses part of the helper
#[path = "support/fjord_serve.rs"]
mod fjord_serve;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use bytes::{Bytes, BytesMut};
use fjord_serve::FjordServe;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use uuid::Uuid;

const UNKNOWN_TOPIC_ID: i16 = 100;

/// One connection speaking the codec.
struct Client {
    stream: TcpStream,
    correlation_id: i32,
}

impl Client {
    fn connect(broker: &FjordServe) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(&broker.bootstrap)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Self {
            stream,
            correlation_id: 0,
        })
    }

    fn call<Response: Decodable>(
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

fn name(text: &str) -> TopicName {
    TopicName(StrBytes::from_string(text.to_string()))
}

/// A batch of `count` records, timestamps `base_ms + i`.
fn batch(count: i64, base_ms: i64) -> anyhow::Result<Bytes> {
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

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn create_topic(client: &mut Client, topic: &str) -> anyhow::Result<Uuid> {
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
fn produce(
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

#[test]
fn api_versions_v4_advertises_kafka_4_1_ranges() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = FjordServe::start(dir.path(), &[])?;
    let mut client = Client::connect(&broker)?;
    let request = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("wire-test"))
        .with_client_software_version(StrBytes::from_static_str("1"));
    let response: ApiVersionsResponse = client.call(ApiKey::ApiVersions, 4, &request)?;
    ensure!(response.error_code == 0);
    let range = |key: ApiKey| {
        response
            .api_keys
            .iter()
            .find(|k| k.api_key == key as i16)
            .map(|k| (k.min_version, k.max_version))
    };
    for (key, expected) in [
        (ApiKey::Produce, (0, 13)),
        (ApiKey::Fetch, (4, 18)),
        (ApiKey::ListOffsets, (1, 10)),
        (ApiKey::Metadata, (0, 13)),
        (ApiKey::ApiVersions, (0, 4)),
        (ApiKey::DeleteTopics, (1, 6)),
        (ApiKey::DescribeCluster, (0, 2)),
    ] {
        ensure!(range(key) == Some(expected), "{key:?}: {:?}", range(key));
    }
    Ok(())
}

#[test]
fn produce_and_fetch_by_topic_id_up_to_v13_and_v18() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = FjordServe::start(dir.path(), &[])?;
    let mut client = Client::connect(&broker)?;
    let topic_id = create_topic(&mut client, "by-id")?;
    let now = now_ms();
    let by_name = TopicProduceData::default().with_name(name("by-id"));
    ensure!(produce(&mut client, 11, by_name.clone(), batch(2, now)?)? == (0, 0));
    ensure!(produce(&mut client, 12, by_name, batch(2, now)?)? == (0, 2));
    let by_id = TopicProduceData::default().with_topic_id(topic_id);
    ensure!(produce(&mut client, 13, by_id, batch(3, now)?)? == (0, 4));
    let unknown = TopicProduceData::default().with_topic_id(Uuid::from_u128(42));
    ensure!(produce(&mut client, 13, unknown, batch(1, now)?)?.0 == UNKNOWN_TOPIC_ID);

    for version in [13, 17, 18] {
        let fetch = |topic_id: Uuid, offset: i64| {
            FetchRequest::default()
                .with_max_wait_ms(0)
                .with_max_bytes(1 << 20)
                .with_session_epoch(-1)
                .with_topics(vec![
                    FetchTopic::default()
                        .with_topic_id(topic_id)
                        .with_partitions(vec![
                            FetchPartition::default()
                                .with_partition(0)
                                .with_fetch_offset(offset)
                                .with_partition_max_bytes(1 << 20),
                        ]),
                ])
        };
        let response: FetchResponse = client.call(ApiKey::Fetch, version, &fetch(topic_id, 2))?;
        let topic = &response.responses[0];
        ensure!(
            topic.topic_id == topic_id,
            "v{version}: the response names the topic by id"
        );
        let partition = &topic.partitions[0];
        ensure!(partition.error_code == 0 && partition.high_watermark == 7);
        let records = partition.records.clone().context("records")?;
        let offsets: Vec<i64> = fjord_record::batches(&records)
            .map(|b| b.map(|b| b.header.base_offset))
            .collect::<Result<_, _>>()?;
        ensure!(
            offsets == [2, 4],
            "v{version}: batches from offset 2: {offsets:?}"
        );
        let response: FetchResponse =
            client.call(ApiKey::Fetch, version, &fetch(Uuid::from_u128(42), 0))?;
        ensure!(response.responses[0].partitions[0].error_code == UNKNOWN_TOPIC_ID);
    }
    Ok(())
}

#[test]
fn list_offsets_v8_to_v10_answer_the_new_specs() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = FjordServe::start(dir.path(), &[])?;
    let mut client = Client::connect(&broker)?;
    create_topic(&mut client, "offsets")?;
    let now = now_ms();
    let topic = TopicProduceData::default().with_name(name("offsets"));
    // The largest timestamp sits in the middle of the first batch's offsets... and of the log.
    produce(&mut client, 9, topic.clone(), batch(3, now - 10_000)?)?;
    produce(&mut client, 9, topic, batch(2, now - 20_000)?)?;
    for version in 8..=10 {
        let asked = |timestamp: i64| {
            ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_timeout_ms(30_000)
                .with_topics(vec![
                    ListOffsetsTopic::default()
                        .with_name(name("offsets"))
                        .with_partitions(vec![
                            ListOffsetsPartition::default()
                                .with_partition_index(0)
                                .with_timestamp(timestamp),
                        ]),
                ])
        };
        let mut answer = |timestamp: i64| -> anyhow::Result<(i64, i64)> {
            let response: ListOffsetsResponse =
                client.call(ApiKey::ListOffsets, version, &asked(timestamp))?;
            let partition = &response.topics[0].partitions[0];
            ensure!(
                partition.error_code == 0,
                "{timestamp}: {}",
                partition.error_code
            );
            Ok((partition.timestamp, partition.offset))
        };
        ensure!(answer(-3)? == (now - 10_000 + 2, 2), "max timestamp");
        ensure!(answer(-4)?.1 == 0, "earliest local");
        ensure!(answer(-5)? == (-1, -1), "latest tiered: nothing is tiered");
    }
    Ok(())
}

#[test]
fn metadata_v13_and_delete_topics_v6_name_topics_by_id() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = FjordServe::start(dir.path(), &[])?;
    let mut client = Client::connect(&broker)?;
    let topic_id = create_topic(&mut client, "doomed")?;
    let metadata = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_topic_id(topic_id),
            MetadataRequestTopic::default().with_topic_id(Uuid::from_u128(42)),
        ]))
        .with_include_topic_authorized_operations(true);
    let response: MetadataResponse = client.call(ApiKey::Metadata, 13, &metadata)?;
    ensure!(response.error_code == 0);
    let (found, unknown) = (&response.topics[0], &response.topics[1]);
    ensure!(
        found.name.as_ref().map(|n| n.as_str()) == Some("doomed") && found.topic_id == topic_id
    );
    ensure!(
        found.topic_authorized_operations == 3576,
        "every topic operation (KIP-430)"
    );
    ensure!(unknown.error_code == UNKNOWN_TOPIC_ID);

    let delete = DeleteTopicsRequest::default()
        .with_topics(vec![DeleteTopicState::default().with_topic_id(topic_id)])
        .with_timeout_ms(30_000);
    let response: DeleteTopicsResponse = client.call(ApiKey::DeleteTopics, 6, &delete)?;
    let result = &response.responses[0];
    ensure!(result.error_code == 0 && result.name.as_ref().map(|n| n.as_str()) == Some("doomed"));
    let response: DeleteTopicsResponse = client.call(ApiKey::DeleteTopics, 6, &delete)?;
    ensure!(response.responses[0].error_code == UNKNOWN_TOPIC_ID);
    Ok(())
}

#[test]
fn describe_cluster_v2_lists_an_unfenced_broker() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = FjordServe::start(dir.path(), &[])?;
    let mut client = Client::connect(&broker)?;
    let request = DescribeClusterRequest::default()
        .with_endpoint_type(1)
        .with_include_fenced_brokers(true)
        .with_include_cluster_authorized_operations(true);
    let response: DescribeClusterResponse = client.call(ApiKey::DescribeCluster, 2, &request)?;
    ensure!(response.error_code == 0 && response.brokers.len() == 1);
    ensure!(!response.brokers[0].is_fenced);
    ensure!(
        response.cluster_authorized_operations == 8096,
        "every cluster operation"
    );
    Ok(())
}
