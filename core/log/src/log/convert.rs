//! Re-encoding producer batches with the topic's `compression.type`, when it names a codec.

use super::{Log, Span};
use crate::limits::VALIDATION_DECOMPRESSED_BYTES_MAX;
use crate::{Error, Result};

impl Log {
    /// The batches re-encoded with the log's `compression.type`, when it names a codec and
    /// some data batch uses another; `None` when they go in as they are. Runs after
    /// validation, so the producer's CRC was checked before the batch gets a new one.
    pub(super) fn convert(&self, batches: &[u8], spans: &[Span]) -> Result<Option<Vec<u8>>> {
        let Some(target) = self.config.compression else {
            return Ok(None);
        };
        let differs = |span: &Span| {
            !span.header.attributes.is_control() && span.header.compression() != Some(target)
        };
        if !spans.iter().any(differs) {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(batches.len());
        for span in spans {
            let bytes = &batches[span.position..span.position + span.size_bytes];
            if differs(span) {
                let batch = fjord_record::Batch {
                    position: span.position,
                    header: span.header,
                    bytes,
                };
                let recompressed =
                    fjord_record::recompress(&batch, target, VALIDATION_DECOMPRESSED_BYTES_MAX)
                        .map_err(Error::InvalidBatch)?;
                out.extend_from_slice(&recompressed);
            } else {
                out.extend_from_slice(bytes);
            }
        }
        Ok(Some(out))
    }
}
