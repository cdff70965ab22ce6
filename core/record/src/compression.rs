//! The four codecs Kafka defines for batch records, with bounded decompression.
//!
//! - gzip: a gzip member (RFC 1952).
//! - snappy: the xerial framing Java clients write (a 16-byte magic, then length-prefixed raw
//!   snappy blocks), or one raw snappy block as librdkafka may write; both are read.
//! - lz4: the LZ4 frame format (KIP-57).
//! - zstd: a zstd frame.

use std::io::{Read, Write};

use crate::{Error, Result};

/// A batch compression codec, as numbered in the attributes field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// All codecs, for tests and benchmarks that go through each.
    pub const ALL: [Compression; 5] = [Self::None, Self::Gzip, Self::Snappy, Self::Lz4, Self::Zstd];

    pub fn id(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Gzip => 1,
            Self::Snappy => 2,
            Self::Lz4 => 3,
            Self::Zstd => 4,
        }
    }

    pub fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => Self::None,
            1 => Self::Gzip,
            2 => Self::Snappy,
            3 => Self::Lz4,
            4 => Self::Zstd,
            _ => return None,
        })
    }

    /// Kafka's name for the codec, as in the `compression.type` config.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }
}

const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_BYTES: usize = 16;
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;

/// Decompresses `input`, failing once the output would pass `limit_bytes`.
pub fn decompress(codec: Compression, input: &[u8], limit_bytes: usize) -> Result<Vec<u8>> {
    let limit_bytes = limit_bytes.min(crate::DECOMPRESSED_BYTES_MAX);
    match codec {
        Compression::None => {
            if input.len() > limit_bytes {
                return Err(Error::DecompressedTooLarge { codec, limit_bytes });
            }
            Ok(input.to_vec())
        }
        Compression::Gzip => read_bounded(codec, flate2::read::GzDecoder::new(input), limit_bytes),
        Compression::Lz4 => read_bounded(
            codec,
            lz4_flex::frame::FrameDecoder::new(input),
            limit_bytes,
        ),
        Compression::Zstd => {
            let decoder =
                zstd::stream::read::Decoder::new(input).map_err(|e| decode_error(codec, e))?;
            read_bounded(codec, decoder, limit_bytes)
        }
        Compression::Snappy => decompress_snappy(input, limit_bytes),
    }
}

/// Compresses `input` with `codec` in the format Kafka clients read.
pub fn compress(codec: Compression, input: &[u8]) -> Result<Vec<u8>> {
    let fail = |e: std::io::Error| Error::Compression {
        codec,
        reason: e.to_string(),
    };
    match codec {
        Compression::None => Ok(input.to_vec()),
        Compression::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(input).map_err(fail)?;
            encoder.finish().map_err(fail)
        }
        Compression::Lz4 => {
            let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
            encoder.write_all(input).map_err(fail)?;
            encoder.finish().map_err(|e| Error::Compression {
                codec,
                reason: e.to_string(),
            })
        }
        Compression::Zstd => zstd::bulk::compress(input, 3).map_err(fail),
        Compression::Snappy => compress_snappy(input),
    }
}

fn read_bounded(codec: Compression, reader: impl Read, limit_bytes: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    // One byte past the limit tells "exactly at the limit" from "over it".
    let read = reader
        .take(limit_bytes as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| decode_error(codec, e))?;
    if read > limit_bytes {
        return Err(Error::DecompressedTooLarge { codec, limit_bytes });
    }
    Ok(out)
}

fn decompress_snappy(input: &[u8], limit_bytes: usize) -> Result<Vec<u8>> {
    let codec = Compression::Snappy;
    if !input.starts_with(XERIAL_MAGIC) {
        return decompress_snappy_block(input, limit_bytes, Vec::new());
    }
    let mut rest = input
        .get(XERIAL_HEADER_BYTES..)
        .ok_or_else(|| Error::Decompression {
            codec,
            reason: "xerial header truncated".into(),
        })?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| Error::Decompression {
                codec,
                reason: "xerial block length truncated".into(),
            })?;
        let len = u32::from_be_bytes(*len) as usize;
        let block = tail.get(..len).ok_or_else(|| Error::Decompression {
            codec,
            reason: "xerial block truncated".into(),
        })?;
        out = decompress_snappy_block(block, limit_bytes, out)?;
        rest = &tail[len..];
    }
    Ok(out)
}

/// Appends one raw snappy block to `out`, checking its declared length against the limit first.
fn decompress_snappy_block(block: &[u8], limit_bytes: usize, mut out: Vec<u8>) -> Result<Vec<u8>> {
    let codec = Compression::Snappy;
    let len = snap::raw::decompress_len(block).map_err(|e| decode_error(codec, e))?;
    if out.len().saturating_add(len) > limit_bytes {
        return Err(Error::DecompressedTooLarge { codec, limit_bytes });
    }
    let start = out.len();
    out.resize(start + len, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| decode_error(codec, e))?;
    out.truncate(start + written);
    Ok(out)
}

fn compress_snappy(input: &[u8]) -> Result<Vec<u8>> {
    let codec = Compression::Snappy;
    let mut out = Vec::with_capacity(XERIAL_HEADER_BYTES + input.len() / 2 + 64);
    out.extend_from_slice(XERIAL_MAGIC);
    out.extend_from_slice(&1u32.to_be_bytes()); // version
    out.extend_from_slice(&1u32.to_be_bytes()); // minimum compatible version
    let mut encoder = snap::raw::Encoder::new();
    for chunk in input.chunks(XERIAL_BLOCK_BYTES) {
        let block = encoder
            .compress_vec(chunk)
            .map_err(|e| Error::Compression {
                codec,
                reason: e.to_string(),
            })?;
        out.extend_from_slice(&(block.len() as u32).to_be_bytes());
        out.extend_from_slice(&block);
    }
    Ok(out)
}

fn decode_error(codec: Compression, error: impl std::fmt::Display) -> Error {
    Error::Decompression {
        codec,
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips() -> anyhow::Result<()> {
        let input: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_be_bytes())
            .collect();
        for codec in Compression::ALL {
            let compressed = compress(codec, &input)?;
            assert_eq!(
                decompress(codec, &compressed, input.len())?,
                input,
                "{codec:?}"
            );
            let too_small = decompress(codec, &compressed, input.len() - 1);
            assert!(
                matches!(too_small, Err(Error::DecompressedTooLarge { .. })),
                "{codec:?}: {too_small:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for codec in Compression::ALL.into_iter().skip(1) {
            assert!(decompress(codec, b"\x82SNAPPY\x00garbage garbage", 1 << 20).is_err());
            assert!(
                decompress(codec, &[0xff; 64], 1 << 20).is_err(),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn raw_snappy_block_is_read() -> anyhow::Result<()> {
        let raw = snap::raw::Encoder::new().compress_vec(b"hello hello hello")?;
        assert_eq!(
            decompress(Compression::Snappy, &raw, 1024)?,
            b"hello hello hello"
        );
        Ok(())
    }
}
