"""The subset of kafka-topics.sh that librdkafka's tests use: --create (with --partitions,
--replication-factor, --config NAME=VALUE), --alter --partitions, --delete; against
--bootstrap-server. Exits non-zero when the broker answers with an error."""

import argparse
import sys

from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic


def main() -> int:
    parser = argparse.ArgumentParser(prog="kafka-topics.sh")
    parser.add_argument("--bootstrap-server", required=True)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--create", action="store_true")
    action.add_argument("--alter", action="store_true")
    action.add_argument("--delete", action="store_true")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--partitions", type=int)
    parser.add_argument("--replication-factor", type=int)
    parser.add_argument("--config", action="append", default=[])
    args = parser.parse_args()

    admin = AdminClient({"bootstrap.servers": args.bootstrap_server})
    if args.create:
        config = dict(item.split("=", 1) for item in args.config)
        futures = admin.create_topics(
            [
                NewTopic(
                    args.topic,
                    num_partitions=args.partitions if args.partitions is not None else -1,
                    replication_factor=(
                        args.replication_factor if args.replication_factor is not None else -1
                    ),
                    config=config,
                )
            ],
            operation_timeout=30,
        )
    elif args.alter:
        if args.partitions is None:
            parser.error("--alter needs --partitions")
        futures = admin.create_partitions([NewPartitions(args.topic, args.partitions)])
    else:
        futures = admin.delete_topics([args.topic], operation_timeout=30)

    for topic, future in futures.items():
        try:
            future.result(timeout=60)
        except Exception as error:  # the broker's error, as KafkaException
            print(f"kafka-topics.sh: {topic}: {error}", file=sys.stderr)
            return 1
        print(f"kafka-topics.sh: {topic}: done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
