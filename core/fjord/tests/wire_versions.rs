//! The versions Fjord advertises beyond what real clients negotiate today, over the raw
//! wire: a client built on the kafka-protocol codec (generated from Kafka 4.1's schemas)
//! against a real `fjord serve`. librdkafka 2.16 (confluent-kafka, `tests/clients`) covers
//! Fetch v16, Metadata v13, Produce v10 and ListOffsets v7; this covers the rest: Produce
//! v11-v13 (v13 by topic id), Fetch v17-v18 (by topic id), ListOffsets v8-v10, Metadata v13
//! by topic id, DeleteTopics v6 (by id), ApiVersions v4, DescribeCluster v2.

#[allow(dead_code)] // each includer uses part of the helpers
#[path = "support/fjord_serve.rs"]
mod fjord_serve;
#[allow(dead_code)]
#[path = "support/wire_client.rs"]
mod wire_client;

use anyhow::{Context as _, ensure};
use fjord_serve::FjordServe;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::TopicProduceData;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;
use wire_client::{Client, UNKNOWN_TOPIC_ID, batch, create_topic, name, now_ms, produce};

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
