//! Walking and checking the batches in a buffer.

use std::borrow::Cow;

use crate::header::{
    ATTRIBUTES_AT, BATCH_OVERHEAD_BYTES, CRC_AT, HEADER_BYTES, MAGIC_AT, MAGIC_V2,
};
use crate::{BatchHeader, Compression, Error, RECORDS_PER_BATCH_MAX, Record, Records, Result};

/// Smallest legal `batch_length`: a header with no records.
const BATCH_LENGTH_MIN: i32 = (HEADER_BYTES - BATCH_OVERHEAD_BYTES) as i32;

/// One batch inside a larger buffer, with its length and magic already checked.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// Byte position of the batch in the buffer it was found in.
    pub position: usize,
    pub header: BatchHeader,
    /// The whole batch, header included.
    pub bytes: &'a [u8],
}

impl<'a> Batch<'a> {
    /// The record section as stored (compressed if the batch is).
    pub fn record_bytes(&self) -> &'a [u8] {
        &self.bytes[HEADER_BYTES..]
    }

    /// CRC-32C over the attributes onwards, as the header's `crc` field should hold.
    pub fn compute_crc(&self) -> u32 {
        crc32c::crc32c(&self.bytes[ATTRIBUTES_AT..])
    }

    pub fn verify_crc(&self) -> Result<()> {
        let computed = self.compute_crc();
        if computed != self.header.crc {
            return Err(Error::CrcMismatch {
                position: self.position,
                stored: self.header.crc,
                computed,
            });
        }
        Ok(())
    }

    pub fn compression(&self) -> Result<Compression> {
        self.header.compression().ok_or(Error::UnknownCompression {
            position: self.position,
            codec: self.header.attributes.compression_id(),
        })
    }

    /// The record bytes, decompressed if needed (borrowed when the batch is uncompressed).
    pub fn decompressed_record_bytes(&self, limit_bytes: usize) -> Result<Cow<'a, [u8]>> {
        match self.compression()? {
            Compression::None => Ok(Cow::Borrowed(self.record_bytes())),
            codec => crate::decompress(codec, self.record_bytes(), limit_bytes).map(Cow::Owned),
        }
    }

    /// Checks every record: well formed, offset deltas `0, 1, 2, ...`, as many as declared.
    /// This is what a producer's batch must satisfy; compacted batches have gaps and do not.
    pub fn validate_records(&self, decompressed_limit_bytes: usize) -> Result<()> {
        self.validate_records_with(decompressed_limit_bytes, |_, _| {})
    }

    /// [`Batch::validate_records`], showing each well-formed record to `each` with its index
    /// in the batch, so a caller can apply its own rules without decompressing twice.
    pub fn validate_records_with(
        &self,
        decompressed_limit_bytes: usize,
        mut each: impl FnMut(usize, &Record<'_>),
    ) -> Result<()> {
        let bytes = self.decompressed_record_bytes(decompressed_limit_bytes)?;
        let mut found = 0usize;
        for (index, record) in Records::new(&bytes).enumerate() {
            let record: Record<'_> = record?;
            if usize::try_from(record.offset_delta).ok() != Some(index) {
                return Err(Error::MalformedRecord {
                    index,
                    reason: "offset delta out of sequence",
                });
            }
            each(index, &record);
            found += 1;
        }
        if found != self.header.records_count as usize {
            return Err(Error::RecordCountMismatch {
                declared: self.header.records_count,
                found,
            });
        }
        Ok(())
    }

    /// Checks the header fields a producer controls: the codec is known and the record count
    /// agrees with the last offset delta.
    pub fn validate_header(&self) -> Result<()> {
        self.compression()?;
        let h = &self.header;
        if h.records_count <= 0
            || h.records_count > RECORDS_PER_BATCH_MAX
            || h.last_offset_delta != h.records_count - 1
        {
            return Err(Error::InvalidRecordCount {
                position: self.position,
                records_count: h.records_count,
                last_offset_delta: h.last_offset_delta,
            });
        }
        Ok(())
    }
}

/// Full check of one batch from an untrusted producer: structure, CRC, header, every record.
pub fn validate_batch(batch: &Batch<'_>, decompressed_limit_bytes: usize) -> Result<()> {
    validate_batch_with(batch, decompressed_limit_bytes, |_, _| {})
}

/// [`validate_batch`], showing each record to `each` (see [`Batch::validate_records_with`]).
pub fn validate_batch_with(
    batch: &Batch<'_>,
    decompressed_limit_bytes: usize,
    each: impl FnMut(usize, &Record<'_>),
) -> Result<()> {
    batch.verify_crc()?;
    batch.validate_header()?;
    batch.validate_records_with(decompressed_limit_bytes, each)
}

/// Iterates the batches in `buffer`. Each yielded batch lies wholly inside the buffer and has
/// magic 2; the CRC is not checked here. Iteration stops after the first error, so a torn
/// tail shows up as one `Err` at the position where the good data ends.
pub fn batches(buffer: &[u8]) -> BatchIter<'_> {
    BatchIter {
        buffer,
        position: 0,
        failed: false,
    }
}

#[derive(Debug, Clone)]
pub struct BatchIter<'a> {
    buffer: &'a [u8],
    position: usize,
    failed: bool,
}

impl<'a> BatchIter<'a> {
    /// Byte position just past the last batch yielded.
    pub fn position(&self) -> usize {
        self.position
    }

    fn next_batch(&mut self) -> Result<Batch<'a>> {
        let position = self.position;
        let rest = &self.buffer[position..];
        let Some((_, batch_length)) = BatchHeader::parse_prefix(rest) else {
            return Err(truncated(position, BATCH_OVERHEAD_BYTES, rest.len()));
        };
        if batch_length < BATCH_LENGTH_MIN {
            return Err(Error::InvalidLength {
                position,
                batch_length: i64::from(batch_length),
                min: i64::from(BATCH_LENGTH_MIN),
                max: i64::from(i32::MAX),
            });
        }
        let size_bytes = BATCH_OVERHEAD_BYTES + batch_length as usize;
        let Some(bytes) = rest.get(..size_bytes) else {
            return Err(truncated(position, size_bytes, rest.len()));
        };
        let magic = bytes[MAGIC_AT] as i8;
        if magic != MAGIC_V2 {
            return Err(Error::UnsupportedMagic { position, magic });
        }
        let header = BatchHeader::parse(bytes)?;
        debug_assert_eq!(CRC_AT + 4, ATTRIBUTES_AT);
        self.position += size_bytes;
        Ok(Batch {
            position,
            header,
            bytes,
        })
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<Batch<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.position >= self.buffer.len() {
            return None;
        }
        let batch = self.next_batch();
        self.failed = batch.is_err();
        Some(batch)
    }
}

fn truncated(position: usize, needed_bytes: usize, available_bytes: usize) -> Error {
    Error::Truncated {
        position,
        needed_bytes,
        available_bytes,
    }
}
