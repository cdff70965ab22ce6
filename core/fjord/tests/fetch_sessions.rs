//! Incremental fetch sessions (KIP-227) over the raw wire, against a real `fjord serve`:
//! opening, incremental answers that leave out partitions with nothing new, forgetting,
//! the session errors, and the cache's eviction rule.

#[allow(dead_code)] // each includer uses part of the helpers
#[path = "support/fjord_serve.rs"]
mod fjord_serve;
#[allow(dead_code)]
#[path = "support/wire_client.rs"]
mod wire_client;

use anyhow::ensure;
use fjord_serve::FjordServe;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::produce_request::TopicProduceData;
use kafka_protocol::messages::*;
use wire_client::{Client, batch, create_topic, name, now_ms};

const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
const INVALID_FETCH_SESSION_EPOCH: i16 = 71;
const FETCH_SESSION_TOPIC_ID_ERROR: i16 = 106;

fn partition(index: i32, offset: i64) -> FetchPartition {
    FetchPartition::default()
        .with_partition(index)
        .with_fetch_offset(offset)
        .with_partition_max_bytes(1 << 20)
}

fn fetch(session_id: i32, epoch: i32, topics: Vec<FetchTopic>) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_session_id(session_id)
        .with_session_epoch(epoch)
        .with_topics(topics)
}

fn topic(partitions: Vec<FetchPartition>) -> FetchTopic {
    FetchTopic::default()
        .with_topic(name("sessions"))
        .with_partitions(partitions)
}

/// (partition, high watermark, has records) of each partition in the answer.
fn answered(response: &FetchResponse) -> Vec<(i32, i64, bool)> {
    response
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| {
            let records = p.records.as_ref().is_some_and(|r| !r.is_empty());
            (p.partition_index, p.high_watermark, records)
        })
        .collect()
}

fn produce_to(client: &mut Client, partition: i32, count: i64) -> anyhow::Result<()> {
    let (error, _) = produce_at(client, partition, count)?;
    ensure!(error == 0, "produce: {error}");
    Ok(())
}

fn produce_at(client: &mut Client, partition: i32, count: i64) -> anyhow::Result<(i16, i64)> {
    use kafka_protocol::messages::produce_request::PartitionProduceData;
    let topic = TopicProduceData::default()
        .with_name(name("sessions"))
        .with_partition_data(vec![
            PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch(count, now_ms())?)),
        ]);
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![topic]);
    let response: ProduceResponse = client.call(ApiKey::Produce, 9, &request)?;
    let answer = &response.responses[0].partition_responses[0];
    Ok((answer.error_code, answer.base_offset))
}

#[test]
fn an_incremental_fetch_answers_only_what_changed() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = FjordServe::start(dir.path(), &[])?;
    let mut client = Client::connect(&broker)?;
    let request = CreateTopicsRequest::default()
        .with_topics(vec![
            kafka_protocol::messages::create_topics_request::CreatableTopic::default()
                .with_name(name("sessions"))
                .with_num_partitions(3)
                .with_replication_factor(1),
        ])
        .with_timeout_ms(30_000);
    let created: CreateTopicsResponse = client.call(ApiKey::CreateTopics, 7, &request)?;
    ensure!(created.topics[0].error_code == 0);
    produce_to(&mut client, 0, 2)?;

    // Epoch 0: a full fetch that opens a session.
    let all = vec![partition(0, 0), partition(1, 0), partition(2, 0)];
    let response: FetchResponse = client.call(ApiKey::Fetch, 12, &fetch(0, 0, vec![topic(all)]))?;
    let id = response.session_id;
    ensure!(response.error_code == 0 && id != 0, "a session opened");
    ensure!(answered(&response) == [(0, 2, true), (1, 0, false), (2, 0, false)]);

    // The consumer moved on in partition 0; nothing else changed: an empty answer.
    let moved = vec![topic(vec![partition(0, 2)])];
    let response: FetchResponse = client.call(ApiKey::Fetch, 12, &fetch(id, 1, moved))?;
    ensure!(response.session_id == id && answered(&response).is_empty());

    // Partition 2 gets data: only partition 2 answers, though the request names nothing.
    produce_to(&mut client, 2, 3)?;
    let response: FetchResponse = client.call(ApiKey::Fetch, 12, &fetch(id, 2, vec![]))?;
    ensure!(
        answered(&response) == [(2, 3, true)],
        "{:?}",
        answered(&response)
    );

    // Forgetting partition 2: new data there no longer answers; partition 1's does.
    produce_to(&mut client, 2, 1)?;
    produce_to(&mut client, 1, 1)?;
    let forget = fetch(id, 3, vec![]).with_forgotten_topics_data(vec![
        ForgottenTopic::default()
            .with_topic(name("sessions"))
            .with_partitions(vec![2]),
    ]);
    let response: FetchResponse = client.call(ApiKey::Fetch, 12, &forget)?;
    ensure!(
        answered(&response) == [(1, 1, true)],
        "{:?}",
        answered(&response)
    );

    // The session's errors, each a top-level answer with no partitions.
    let response: FetchResponse = client.call(ApiKey::Fetch, 12, &fetch(id, 9, vec![]))?;
    ensure!(response.error_code == INVALID_FETCH_SESSION_EPOCH);
    let response: FetchResponse = client.call(ApiKey::Fetch, 13, &fetch(id, 4, vec![]))?;
    ensure!(response.error_code == FETCH_SESSION_TOPIC_ID_ERROR);
    let response: FetchResponse = client.call(ApiKey::Fetch, 12, &fetch(id, 4, vec![]))?;
    ensure!(
        response.error_code == 0,
        "the session survives refused fetches"
    );

    // Epoch -1 closes it: the id is gone afterwards.
    let response: FetchResponse = client.call(ApiKey::Fetch, 12, &fetch(id, -1, vec![]))?;
    ensure!(response.error_code == 0 && response.session_id == 0);
    let response: FetchResponse = client.call(ApiKey::Fetch, 12, &fetch(id, 5, vec![]))?;
    ensure!(response.error_code == FETCH_SESSION_ID_NOT_FOUND);
    Ok(())
}

#[test]
fn a_full_cache_opens_no_session_for_a_smaller_one() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = FjordServe::start(
        dir.path(),
        &["--max-incremental-fetch-session-cache-slots", "1"],
    )?;
    let mut client = Client::connect(&broker)?;
    create_topic(&mut client, "sessions")?;
    let two = || vec![topic(vec![partition(0, 0), partition(0, 1)])];
    let one = || vec![topic(vec![partition(0, 0)])];
    let first: FetchResponse = client.call(ApiKey::Fetch, 12, &fetch(0, 0, two()))?;
    ensure!(first.session_id != 0);
    // The only slot is taken by a larger, recently used session: the consumer fetches in
    // full, without a session.
    let second: FetchResponse = client.call(ApiKey::Fetch, 12, &fetch(0, 0, one()))?;
    ensure!(second.error_code == 0 && second.session_id == 0);
    let still: FetchResponse =
        client.call(ApiKey::Fetch, 12, &fetch(first.session_id, 1, vec![]))?;
    ensure!(still.error_code == 0);
    Ok(())
}
