//! Produce v0-v2: advertised, as Kafka 4 advertises them, and refused. They carry message
//! formats v0 and v1, which neither Kafka 4 (KAFKA-18659) nor Fjord stores, and the codec
//! (generated from Kafka 4.1's schemas) no longer reads them; so the few fields needed to
//! answer are read here, every length checked, and each partition is answered
//! UNSUPPORTED_VERSION. Nothing is written.

use bytes::{BufMut, Bytes, BytesMut};

use crate::{Error, Result};

/// The last Produce version that is refused here.
pub(crate) const LEGACY_VERSION_MAX: i16 = 2;

/// The response frame (size prefix included) refusing a Produce v0-v2 request, or `None`
/// for acks=0, which gets no response.
pub(crate) fn refuse(frame: &[u8], version: i16) -> Result<Option<Bytes>> {
    let mut request = Reader { bytes: frame };
    // Request header v1: api key, api version, correlation id, client id.
    request.skip(4)?;
    let correlation_id = request.i32()?;
    request.nullable_string()?;
    let acks = request.i16()?;
    request.skip(4)?; // timeout
    let mut out = BytesMut::new();
    out.put_i32(0); // the size, set below
    out.put_i32(correlation_id);
    let topics = request.count(8)?;
    out.put_i32(topics as i32);
    for _ in 0..topics {
        let name = request.nullable_string()?.unwrap_or_default();
        out.put_i16(name.len() as i16);
        out.put_slice(name);
        let partitions = request.count(8)?;
        out.put_i32(partitions as i32);
        for _ in 0..partitions {
            out.put_i32(request.i32()?);
            out.put_i16(crate::codes::Refusal::UnsupportedVersion.code());
            out.put_i64(-1); // base offset
            if version >= 2 {
                out.put_i64(-1); // log append time
            }
            let records = request.i32()?;
            request.skip(usize::try_from(records).unwrap_or(0))?;
        }
    }
    if version >= 1 {
        out.put_i32(0); // throttle time
    }
    if acks == 0 {
        return Ok(None);
    }
    let size = out.len() - 4;
    out[..4].copy_from_slice(&(size as i32).to_be_bytes());
    Ok(Some(out.freeze()))
}

/// Reads big-endian fields, every length checked against what is left.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8]> {
        if count > self.bytes.len() {
            return Err(Error::MalformedRequest {
                reason: "Produce v0-v2: the request ends early".into(),
            });
        }
        let (taken, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(taken)
    }

    fn skip(&mut self, count: usize) -> Result<()> {
        self.take(count).map(|_| ())
    }

    fn i16(&mut self) -> Result<i16> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn nullable_string(&mut self) -> Result<Option<&'a [u8]>> {
        match self.i16()? {
            -1 => Ok(None),
            length => Ok(Some(
                self.take(usize::try_from(length).unwrap_or(usize::MAX))?,
            )),
        }
    }

    /// An array count, at most one element per `element_bytes_min` bytes left.
    fn count(&mut self, element_bytes_min: usize) -> Result<usize> {
        let count = usize::try_from(self.i32()?).unwrap_or(0);
        if count > self.bytes.len() / element_bytes_min {
            return Err(Error::MalformedRequest {
                reason: "Produce v0-v2: an array longer than the request".into(),
            });
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(version: i16, acks: i16) -> Vec<u8> {
        let mut frame = Vec::new();
        frame.extend_from_slice(&0i16.to_be_bytes());
        frame.extend_from_slice(&version.to_be_bytes());
        frame.extend_from_slice(&7i32.to_be_bytes());
        frame.extend_from_slice(&(-1i16).to_be_bytes());
        frame.extend_from_slice(&acks.to_be_bytes());
        frame.extend_from_slice(&1000i32.to_be_bytes());
        frame.extend_from_slice(&1i32.to_be_bytes());
        frame.extend_from_slice(&1i16.to_be_bytes());
        frame.push(b't');
        frame.extend_from_slice(&1i32.to_be_bytes());
        frame.extend_from_slice(&3i32.to_be_bytes()); // partition
        frame.extend_from_slice(&2i32.to_be_bytes());
        frame.extend_from_slice(b"xx");
        frame
    }

    #[test]
    fn every_partition_is_answered_unsupported_version() -> Result<()> {
        let response = refuse(&request(2, 1), 2)?.ok_or(Error::Encode {
            reason: "no response".into(),
        })?;
        let expected: Vec<u8> = [
            &41i32.to_be_bytes()[..],
            &7i32.to_be_bytes(),
            &1i32.to_be_bytes(),
            &1i16.to_be_bytes(),
            b"t",
            &1i32.to_be_bytes(),
            &3i32.to_be_bytes(),
            &35i16.to_be_bytes(),
            &(-1i64).to_be_bytes(),
            &(-1i64).to_be_bytes(),
            &0i32.to_be_bytes(),
        ]
        .concat();
        assert_eq!(&response[..], &expected[..]);
        assert!(refuse(&request(0, 0), 0)?.is_none(), "acks=0: no response");
        Ok(())
    }

    #[test]
    fn cut_requests_and_huge_counts_are_malformed() {
        let full = request(1, 1);
        for end in 0..full.len() - 2 {
            assert!(refuse(&full[..end], 1).is_err(), "cut at {end}");
        }
        let mut huge = request(1, 1);
        huge[16..20].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(refuse(&huge, 1).is_err());
    }
}
