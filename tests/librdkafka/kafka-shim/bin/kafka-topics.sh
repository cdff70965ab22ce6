#!/usr/bin/env bash
# Stand-in for Apache Kafka's bin/kafka-topics.sh, which some librdkafka tests run through
# KAFKA_PATH (test_kafka_topics in tests/test.c): the same admin requests, sent with
# confluent-kafka's AdminClient instead of Kafka's Java tools. run.sh sets RDK_PYTHON.
exec "${RDK_PYTHON:-python3}" "$(dirname "$0")/kafka_topics.py" "$@"
