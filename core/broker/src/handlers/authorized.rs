//! Authorized operations (KIP-430) as a broker without an authorizer answers them: every
//! operation that applies to the resource type, as Kafka's `AuthHelper` does when no
//! authorizer is configured. Each is a bit `1 << code` of Kafka's `AclOperation` codes.

const READ: i32 = 3;
const WRITE: i32 = 4;
const CREATE: i32 = 5;
const DELETE: i32 = 6;
const ALTER: i32 = 7;
const DESCRIBE: i32 = 8;
const CLUSTER_ACTION: i32 = 9;
const DESCRIBE_CONFIGS: i32 = 10;
const ALTER_CONFIGS: i32 = 11;
const IDEMPOTENT_WRITE: i32 = 12;

/// What a client gets when it did not ask (Kafka's "omitted" value).
pub(crate) const NOT_REQUESTED: i32 = i32::MIN;

const fn bits(operations: &[i32]) -> i32 {
    let mut set = 0;
    let mut i = 0;
    while i < operations.len() {
        set |= 1 << operations[i];
        i += 1;
    }
    set
}

/// Every operation on a topic.
pub(crate) const TOPIC: i32 = bits(&[
    READ,
    WRITE,
    CREATE,
    DELETE,
    ALTER,
    DESCRIBE,
    DESCRIBE_CONFIGS,
    ALTER_CONFIGS,
]);

/// Every operation on a consumer group.
pub(crate) const GROUP: i32 = bits(&[READ, DESCRIBE, DELETE]);

/// Every operation on the cluster.
pub(crate) const CLUSTER: i32 = bits(&[
    CREATE,
    CLUSTER_ACTION,
    DESCRIBE_CONFIGS,
    ALTER_CONFIGS,
    IDEMPOTENT_WRITE,
    ALTER,
    DESCRIBE,
]);

/// `operations` if the client asked for them, else the omitted value.
pub(crate) fn if_requested(requested: bool, operations: i32) -> i32 {
    if requested { operations } else { NOT_REQUESTED }
}

#[cfg(test)]
mod tests {
    /// READ..DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS; READ, DELETE, DESCRIBE; ALTER,
    /// CREATE, DESCRIBE, CLUSTER_ACTION..IDEMPOTENT_WRITE.
    #[test]
    fn bit_sets_match_kafka() {
        assert_eq!(super::TOPIC, 3576);
        assert_eq!(super::GROUP, 328);
        assert_eq!(super::CLUSTER, 8096);
    }
}
