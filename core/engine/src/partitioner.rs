//! Kafka's default partitioner, for the engine's own writers (processors, connectors): a
//! record with a key goes to `murmur2(key) & 0x7fffffff % partitions`, exactly as the Java
//! client and librdkafka's `murmur2_random` place it, so keyed data written in process lands
//! where a Kafka client would put it. Records without a key stick to one partition until a
//! batch's worth of bytes went there, then move to the next (KIP-480's sticky partitioner,
//! round robin instead of random so that tests are deterministic).

use std::collections::HashMap;
use std::sync::Mutex;

use fjord_partition::PartitionIndex;

/// Bytes sent to one partition before records without a key move on (Kafka's default
/// `batch.size`).
pub const STICKY_BATCH_BYTES: usize = 16 * 1024;

/// Kafka's murmur2 (the Java client's `Utils.murmur2`), seed `0x9747b28c`.
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len() as u32;
    let mut h: u32 = 0x9747_b28c ^ length;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner gives a key.
pub fn partition_for_key(key: &[u8], partitions: i32) -> PartitionIndex {
    let positive = murmur2(key) & 0x7fff_ffff;
    PartitionIndex(positive % partitions.max(1))
}

/// Sticky placement of records without a key, per topic.
#[derive(Debug, Default)]
pub(crate) struct Partitioner {
    sticky: Mutex<HashMap<String, (i32, usize)>>,
}

impl Partitioner {
    /// Where a record of `record_bytes` goes in a topic of `partitions` partitions.
    pub(crate) fn partition(
        &self,
        topic: &str,
        partitions: i32,
        key: Option<&[u8]>,
        record_bytes: usize,
    ) -> PartitionIndex {
        if let Some(key) = key {
            return partition_for_key(key, partitions);
        }
        let partitions = partitions.max(1);
        let mut sticky = self.sticky.lock().unwrap_or_else(|e| e.into_inner());
        let (partition, sent) = sticky
            .entry(topic.to_string())
            .or_insert_with(|| (murmur2(topic.as_bytes()).rem_euclid(partitions), 0));
        if *sent >= STICKY_BATCH_BYTES || *partition >= partitions {
            *partition = (*partition + 1) % partitions;
            *sent = 0;
        }
        *sent += record_bytes.max(1);
        PartitionIndex(*partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Java client's own test vectors (`UtilsTest.testMurmur2`).
    #[test]
    fn murmur2_matches_kafka() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key), expected, "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn keys_hash_and_null_keys_stick_then_move() {
        let partitioner = Partitioner::default();
        let keyed = partitioner.partition("t", 6, Some(b"foobar"), 100);
        assert_eq!(keyed, partition_for_key(b"foobar", 6));
        let first = partitioner.partition("t", 6, None, STICKY_BATCH_BYTES - 1);
        assert_eq!(partitioner.partition("t", 6, None, 1), first);
        let next = partitioner.partition("t", 6, None, 1);
        assert_eq!(next, PartitionIndex((first.0 + 1) % 6));
    }
}
