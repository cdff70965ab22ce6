//! The two Kafka admin requests librdkafka has no API for, ListTransactions v0 and
//! DescribeTransactions v0 (KIP-664), encoded by hand: both are flexible versions (compact
//! strings and arrays, tagged fields), with request header v2 and response header v1. Kept
//! apart from the broker's codec on purpose (see the module docs of `cli`).

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};

const LIST_TRANSACTIONS: i16 = 66;
const DESCRIBE_TRANSACTIONS: i16 = 65;
/// Largest answer read: a transaction list is small; a bigger frame is not an answer.
const RESPONSE_BYTES_MAX: usize = 64 << 20;

/// One transaction as ListTransactions gives it.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Listed {
    pub(crate) transactional_id: String,
    pub(crate) producer_id: i64,
    pub(crate) state: String,
}

/// One transaction as DescribeTransactions gives it.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Described {
    pub(crate) error_code: i16,
    pub(crate) transactional_id: String,
    pub(crate) state: String,
    pub(crate) timeout_ms: i32,
    pub(crate) start_time_ms: i64,
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) partitions: Vec<(String, Vec<i32>)>,
}

/// A connection to one broker.
pub(crate) struct AdminWire {
    stream: TcpStream,
    correlation_id: i32,
}

impl AdminWire {
    pub(crate) fn connect(broker: &str, timeout: Duration) -> anyhow::Result<Self> {
        let address = broker
            .to_socket_addrs()
            .with_context(|| format!("resolving {broker}"))?
            .next()
            .with_context(|| format!("{broker} has no address"))?;
        let stream = TcpStream::connect_timeout(&address, timeout)
            .with_context(|| format!("connecting to {broker}"))?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(Self {
            stream,
            correlation_id: 0,
        })
    }

    /// ListTransactions v0: every transaction this broker coordinates, with an error code
    /// for the whole answer.
    pub(crate) fn list_transactions(&mut self) -> anyhow::Result<(i16, Vec<Listed>)> {
        // No state filter, no producer id filter, no tagged fields.
        let mut reader = self.call(LIST_TRANSACTIONS, &[1, 1, 0])?;
        reader.i32()?; // throttle time
        let error_code = reader.i16()?;
        for _ in 0..reader.compact_length()? {
            reader.compact_string()?; // an unknown state filter: none was sent
        }
        let mut listed = Vec::new();
        for _ in 0..reader.compact_length()? {
            listed.push(Listed {
                transactional_id: reader.compact_string()?,
                producer_id: reader.i64()?,
                state: reader.compact_string()?,
            });
            reader.tagged_fields()?;
        }
        Ok((error_code, listed))
    }

    /// DescribeTransactions v0 for one transactional id.
    pub(crate) fn describe_transaction(&mut self, id: &str) -> anyhow::Result<Described> {
        let mut body = vec![2]; // a compact array of one
        put_compact_string(&mut body, id)?;
        body.push(0); // tagged fields
        let mut reader = self.call(DESCRIBE_TRANSACTIONS, &body)?;
        reader.i32()?; // throttle time
        ensure!(
            reader.compact_length()? == 1,
            "one transaction asked, not one answered"
        );
        let mut described = Described {
            error_code: reader.i16()?,
            transactional_id: reader.compact_string()?,
            state: reader.compact_string()?,
            timeout_ms: reader.i32()?,
            start_time_ms: reader.i64()?,
            producer_id: reader.i64()?,
            producer_epoch: reader.i16()?,
            partitions: Vec::new(),
        };
        for _ in 0..reader.compact_length()? {
            let topic = reader.compact_string()?;
            let partitions = (0..reader.compact_length()?)
                .map(|_| reader.i32())
                .collect::<anyhow::Result<_>>()?;
            reader.tagged_fields()?;
            described.partitions.push((topic, partitions));
        }
        Ok(described)
    }

    /// Sends one request (header v2) and returns a reader over its answer after the header.
    fn call(&mut self, api_key: i16, body: &[u8]) -> anyhow::Result<Reader> {
        self.correlation_id += 1;
        let client_id = b"fjord-cli";
        let mut frame = Vec::with_capacity(64 + body.len());
        frame.extend_from_slice(&api_key.to_be_bytes());
        frame.extend_from_slice(&0i16.to_be_bytes()); // version 0
        frame.extend_from_slice(&self.correlation_id.to_be_bytes());
        frame.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
        frame.extend_from_slice(client_id);
        frame.push(0); // header tagged fields
        frame.extend_from_slice(body);
        let size = i32::try_from(frame.len()).context("request too large")?;
        self.stream.write_all(&size.to_be_bytes())?;
        self.stream.write_all(&frame)?;
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size)?;
        let size = usize::try_from(i32::from_be_bytes(size)).context("negative frame size")?;
        ensure!(
            size <= RESPONSE_BYTES_MAX,
            "a {size}-byte answer is not believable"
        );
        let mut answer = vec![0u8; size];
        self.stream.read_exact(&mut answer)?;
        let mut reader = Reader {
            bytes: answer,
            at: 0,
        };
        ensure!(
            reader.i32()? == self.correlation_id,
            "answer to another request"
        );
        reader.tagged_fields()?;
        Ok(reader)
    }
}

fn put_compact_string(out: &mut Vec<u8>, text: &str) -> anyhow::Result<()> {
    put_varint(
        out,
        u32::try_from(text.len() + 1).context("string too long")?,
    );
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

fn put_varint(out: &mut Vec<u8>, mut value: u32) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads an answer's fields in order, each checked against the bytes left.
struct Reader {
    bytes: Vec<u8>,
    at: usize,
}

impl Reader {
    fn take(&mut self, count: usize) -> anyhow::Result<&[u8]> {
        let end = self
            .at
            .checked_add(count)
            .filter(|e| *e <= self.bytes.len());
        let Some(end) = end else {
            bail!("answer ends early");
        };
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> anyhow::Result<[u8; N]> {
        Ok(self.take(N)?.try_into()?)
    }

    fn i16(&mut self) -> anyhow::Result<i16> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    fn i32(&mut self) -> anyhow::Result<i32> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    fn i64(&mut self) -> anyhow::Result<i64> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    fn varint(&mut self) -> anyhow::Result<u32> {
        let mut value = 0u32;
        for shift in (0..35).step_by(7) {
            let byte = self.take(1)?[0];
            value |= u32::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        bail!("varint longer than five bytes")
    }

    /// A compact array's element count (a null array reads as empty).
    fn compact_length(&mut self) -> anyhow::Result<usize> {
        let length = usize::try_from(self.varint()?.saturating_sub(1))?;
        ensure!(
            length <= self.bytes.len() - self.at,
            "array longer than the answer"
        );
        Ok(length)
    }

    fn compact_string(&mut self) -> anyhow::Result<String> {
        let length = self.compact_length()?;
        Ok(String::from_utf8(self.take(length)?.to_vec())?)
    }

    fn tagged_fields(&mut self) -> anyhow::Result<()> {
        for _ in 0..self.varint()? {
            self.varint()?; // tag
            let size = usize::try_from(self.varint()?)?;
            self.take(size)?;
        }
        Ok(())
    }
}
