//! Zero-copy views of the records inside a batch.
//!
//! ```text
//! length           varint   bytes after this field
//! attributes       int8     unused, 0
//! timestamp_delta  varlong  from the batch's base_timestamp
//! offset_delta     varint   from the batch's base_offset
//! key_length       varint   -1 for a null key
//! key              bytes
//! value_length     varint   -1 for a null value (a tombstone)
//! value            bytes
//! headers_count    varint
//!   header_key_length varint, header_key bytes, header_value_length varint, header_value bytes
//! ```

use crate::varint::{read_varint, read_varlong};
use crate::{Error, Result};

/// One record, borrowed from the record bytes of its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    headers: &'a [u8],
    headers_count: usize,
    /// The whole encoded record, length prefix included, for copying it unchanged.
    pub raw: &'a [u8],
}

impl<'a> Record<'a> {
    pub fn headers(&self) -> HeaderIter<'a> {
        HeaderIter {
            rest: self.headers,
            remaining: self.headers_count,
        }
    }

    pub fn headers_count(&self) -> usize {
        self.headers_count
    }
}

/// One record header. Keys are bytes: Kafka says UTF-8, but the broker does not enforce it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    pub key: &'a [u8],
    pub value: Option<&'a [u8]>,
}

/// The headers of a record, already validated when the record was parsed.
#[derive(Debug, Clone)]
pub struct HeaderIter<'a> {
    rest: &'a [u8],
    remaining: usize,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = Header<'a>;

    fn next(&mut self) -> Option<Header<'a>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let mut cursor = Cursor { rest: self.rest };
        let key = cursor.bytes().ok()??;
        let value = cursor.bytes().ok()?;
        self.rest = cursor.rest;
        Some(Header { key, value })
    }
}

/// Iterates the records in a batch's (decompressed) record bytes. Yields an error for the
/// first malformed record and then stops.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    rest: &'a [u8],
    index: usize,
    failed: bool,
}

impl<'a> Records<'a> {
    pub fn new(record_bytes: &'a [u8]) -> Self {
        Self {
            rest: record_bytes,
            index: 0,
            failed: false,
        }
    }

    /// Bytes not yet consumed; empty after the last record of a well-formed batch.
    pub fn remaining_bytes(&self) -> usize {
        self.rest.len()
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.failed {
            return None;
        }
        let index = self.index;
        self.index += 1;
        match parse_record(self.rest) {
            Ok((record, used)) => {
                self.rest = &self.rest[used..];
                Some(Ok(record))
            }
            Err(reason) => {
                self.failed = true;
                Some(Err(Error::MalformedRecord { index, reason }))
            }
        }
    }
}

fn parse_record(bytes: &[u8]) -> Result<(Record<'_>, usize), &'static str> {
    let (length, prefix) = read_varint(bytes).ok_or("bad length varint")?;
    let length = usize::try_from(length).map_err(|_| "negative length")?;
    let end = prefix.checked_add(length).ok_or("length overflows")?;
    let body = bytes.get(prefix..end).ok_or("length runs past the batch")?;
    let mut cursor = Cursor { rest: body };
    let _attributes = cursor.take(1).ok_or("attributes truncated")?;
    let timestamp_delta = cursor.varlong().ok_or("bad timestamp delta")?;
    let offset_delta = cursor.varint().ok_or("bad offset delta")?;
    let key = cursor.bytes().map_err(|()| "bad key")?;
    let value = cursor.bytes().map_err(|()| "bad value")?;
    let headers_count = cursor.varint().ok_or("bad header count")?;
    let headers_count = usize::try_from(headers_count).map_err(|_| "negative header count")?;
    let headers = cursor.rest;
    for _ in 0..headers_count {
        cursor
            .bytes()
            .map_err(|()| "bad header key")?
            .ok_or("null header key")?;
        cursor.bytes().map_err(|()| "bad header value")?;
    }
    if !cursor.rest.is_empty() {
        return Err("bytes left over after the headers");
    }
    let record = Record {
        timestamp_delta,
        offset_delta,
        key,
        value,
        headers,
        headers_count,
        raw: &bytes[..end],
    };
    Ok((record, end))
}

struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let taken = self.rest.get(..len)?;
        self.rest = &self.rest[len..];
        Some(taken)
    }

    fn varint(&mut self) -> Option<i32> {
        let (value, used) = read_varint(self.rest)?;
        self.rest = &self.rest[used..];
        Some(value)
    }

    fn varlong(&mut self) -> Option<i64> {
        let (value, used) = read_varlong(self.rest)?;
        self.rest = &self.rest[used..];
        Some(value)
    }

    /// A length-prefixed byte string; length -1 is null.
    fn bytes(&mut self) -> Result<Option<&'a [u8]>, ()> {
        let length = self.varint().ok_or(())?;
        if length == -1 {
            return Ok(None);
        }
        let length = usize::try_from(length).map_err(|_| ())?;
        self.take(length).map(Some).ok_or(())
    }
}
