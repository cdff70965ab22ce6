//! Encoding new batches: for tests, benchmarks, connectors writing straight to the log, and
//! compaction rewriting a batch with some of its records removed.

use crate::header::{
    ATTRIBUTES_AT, BATCH_LENGTH_AT, BATCH_OVERHEAD_BYTES, CRC_AT, HEADER_BYTES, MAGIC_V2,
};
use crate::varint::{varint_len, write_varint, write_varlong};
use crate::{
    Attributes, Batch, BatchHeader, Compression, Error, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
    NO_SEQUENCE, RECORDS_PER_BATCH_MAX, Result, TimestampType,
};

/// A record to encode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewRecord<'a> {
    pub timestamp_ms: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [(&'a [u8], Option<&'a [u8]>)],
}

/// Builds one v2 batch. Records get consecutive offset deltas from 0.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    pub compression: Compression,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub transactional: bool,
    pub control: bool,
    records: Vec<u8>,
    records_count: i32,
    base_timestamp: Option<i64>,
    max_timestamp: i64,
}

impl BatchBuilder {
    pub fn new(compression: Compression) -> Self {
        Self {
            compression,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
            transactional: false,
            control: false,
            records: Vec::new(),
            records_count: 0,
            base_timestamp: None,
            max_timestamp: -1,
        }
    }

    pub fn records_count(&self) -> i32 {
        self.records_count
    }

    /// Uncompressed bytes of the records pushed so far.
    pub fn record_bytes(&self) -> usize {
        self.records.len()
    }

    pub fn push(&mut self, record: &NewRecord<'_>) -> Result<()> {
        if self.records_count >= RECORDS_PER_BATCH_MAX {
            return Err(Error::BuilderLimit {
                what: "records",
                limit: RECORDS_PER_BATCH_MAX as usize,
            });
        }
        let base_timestamp = *self.base_timestamp.get_or_insert(record.timestamp_ms);
        self.max_timestamp = self.max_timestamp.max(record.timestamp_ms);
        let mut body = Vec::with_capacity(
            16 + record.key.map_or(0, <[u8]>::len) + record.value.map_or(0, <[u8]>::len),
        );
        body.push(0); // attributes
        write_varlong(&mut body, record.timestamp_ms.wrapping_sub(base_timestamp));
        write_varint(&mut body, self.records_count);
        write_bytes(&mut body, record.key)?;
        write_bytes(&mut body, record.value)?;
        write_varint(&mut body, length_i32(record.headers.len())?);
        for (key, value) in record.headers {
            write_bytes(&mut body, Some(key))?;
            write_bytes(&mut body, *value)?;
        }
        write_varint(&mut self.records, length_i32(body.len())?);
        self.records.extend_from_slice(&body);
        self.records_count += 1;
        Ok(())
    }

    /// Encodes the batch with base offset 0; the log assigns the real one on append.
    pub fn build(&self) -> Result<Vec<u8>> {
        let attributes = Attributes(0)
            .with_compression(self.compression)
            .with_timestamp_type(TimestampType::CreateTime)
            .with_transactional(self.transactional)
            .with_control(self.control);
        let base_timestamp = self.base_timestamp.unwrap_or(-1);
        let header = BatchHeader {
            base_offset: 0,
            batch_length: 0,
            partition_leader_epoch: -1,
            magic: MAGIC_V2,
            crc: 0,
            attributes,
            last_offset_delta: (self.records_count - 1).max(0),
            base_timestamp,
            max_timestamp: self.max_timestamp,
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence: self.base_sequence,
            records_count: self.records_count,
        };
        encode(&header, self.compression, &self.records)
    }
}

/// Re-encodes a batch keeping only `records` (raw encoded records taken from it, deltas
/// unchanged), compressed with `compression`. Base offset, last offset delta, timestamps and
/// producer fields stay as in `original`, which is what log compaction needs.
pub fn rebuild<'a>(
    original: &BatchHeader,
    records: impl IntoIterator<Item = &'a [u8]>,
    compression: Compression,
) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut records_count = 0i32;
    for raw in records {
        body.extend_from_slice(raw);
        records_count += 1;
    }
    let header = BatchHeader {
        records_count,
        attributes: original.attributes.with_compression(compression),
        ..*original
    };
    encode(&header, compression, &body)
}

/// Re-encodes a whole batch with another codec: the same header (offsets, timestamps,
/// producer fields, record count) and the same records, compressed with `compression`
/// (a topic's `compression.type`). Decompression stops past `limit_bytes`. The caller checks
/// the original CRC first: the new batch gets a fresh one.
pub fn recompress(
    batch: &Batch<'_>,
    compression: Compression,
    limit_bytes: usize,
) -> Result<Vec<u8>> {
    let records = batch.decompressed_record_bytes(limit_bytes)?;
    let header = BatchHeader {
        attributes: batch.header.attributes.with_compression(compression),
        ..batch.header
    };
    encode(&header, compression, &records)
}

fn encode(header: &BatchHeader, compression: Compression, records: &[u8]) -> Result<Vec<u8>> {
    let compressed = crate::compress(compression, records)?;
    let size_bytes = HEADER_BYTES + compressed.len();
    let batch_length = length_i32(size_bytes - BATCH_OVERHEAD_BYTES)?;
    let mut out = Vec::with_capacity(size_bytes);
    out.extend_from_slice(&header.base_offset.to_be_bytes());
    out.extend_from_slice(&batch_length.to_be_bytes());
    out.extend_from_slice(&header.partition_leader_epoch.to_be_bytes());
    out.push(MAGIC_V2 as u8);
    out.extend_from_slice(&[0; 4]); // crc, filled below
    out.extend_from_slice(&header.attributes.0.to_be_bytes());
    out.extend_from_slice(&header.last_offset_delta.to_be_bytes());
    out.extend_from_slice(&header.base_timestamp.to_be_bytes());
    out.extend_from_slice(&header.max_timestamp.to_be_bytes());
    out.extend_from_slice(&header.producer_id.to_be_bytes());
    out.extend_from_slice(&header.producer_epoch.to_be_bytes());
    out.extend_from_slice(&header.base_sequence.to_be_bytes());
    out.extend_from_slice(&header.records_count.to_be_bytes());
    debug_assert_eq!(out.len(), HEADER_BYTES);
    debug_assert_eq!(
        &out[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4],
        &batch_length.to_be_bytes()
    );
    out.extend_from_slice(&compressed);
    let crc = crc32c::crc32c(&out[ATTRIBUTES_AT..]);
    out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

fn write_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) -> Result<()> {
    match bytes {
        None => write_varint(out, -1),
        Some(bytes) => {
            let len = length_i32(bytes.len())?;
            out.reserve(varint_len(len) + bytes.len());
            write_varint(out, len);
            out.extend_from_slice(bytes);
        }
    }
    Ok(())
}

fn length_i32(len: usize) -> Result<i32> {
    i32::try_from(len).map_err(|_| Error::BuilderLimit {
        what: "bytes",
        limit: i32::MAX as usize,
    })
}
