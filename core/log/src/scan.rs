//! Walking the batches of a log file in chunks, checking each one.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use fjord_record::{BATCH_OVERHEAD_BYTES, BatchHeader, HEADER_BYTES, MAGIC_V2};

use crate::limits::BATCH_BYTES_MAX;
use crate::{Result, error::io};

/// The first refill of a [`Scanner`].
const CHUNK_BYTES_FIRST: usize = 4096;

/// One batch found by a [`Scanner`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scanned {
    pub(crate) position: u64,
    pub(crate) header: BatchHeader,
    pub(crate) size_bytes: u64,
}

/// What the scanner found at its position.
#[derive(Debug)]
pub(crate) enum Step {
    Batch(Scanned),
    End,
    /// The bytes at `position` are not a valid batch: a torn write or corruption.
    Invalid {
        position: u64,
        reason: String,
    },
}

/// Reads batches from `[position, end)` of a file. With `verify_crc` it holds each whole batch
/// in memory and checks its CRC; without, it reads only headers.
#[derive(Debug)]
pub(crate) struct Scanner<'a> {
    file: &'a File,
    path: &'a Path,
    position: u64,
    end: u64,
    verify_crc: bool,
    /// Bytes to read on the next refill: starts small (a look-up usually needs one header)
    /// and doubles up to `chunk_bytes_max` as the scan goes on.
    chunk_bytes: usize,
    chunk_bytes_max: usize,
    buffer: Vec<u8>,
    buffer_start: u64,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(
        file: &'a File,
        path: &'a Path,
        range: std::ops::Range<u64>,
        verify_crc: bool,
        chunk_bytes: usize,
    ) -> Self {
        Self {
            file,
            path,
            position: range.start,
            end: range.end,
            verify_crc,
            chunk_bytes: CHUNK_BYTES_FIRST.min(chunk_bytes),
            chunk_bytes_max: chunk_bytes,
            buffer: Vec::new(),
            buffer_start: 0,
        }
    }

    /// The bytes of a batch just returned by `next`, when scanning with `verify_crc`.
    pub(crate) fn bytes(&self, batch: &Scanned) -> Option<&[u8]> {
        let from = usize::try_from(batch.position.checked_sub(self.buffer_start)?).ok()?;
        self.buffer.get(from..from + batch.size_bytes as usize)
    }

    pub(crate) fn next(&mut self) -> Result<Step> {
        let position = self.position;
        if position >= self.end {
            return Ok(Step::End);
        }
        let available = self.end - position;
        if available < BATCH_OVERHEAD_BYTES as u64 {
            return Ok(invalid(
                position,
                format!("{available} stray bytes at the end"),
            ));
        }
        let prefix = self.fill(position, BATCH_OVERHEAD_BYTES)?;
        let Some((_, batch_length)) = prefix.and_then(BatchHeader::parse_prefix) else {
            return Ok(invalid(position, "file shorter than expected".into()));
        };
        let size_bytes = BATCH_OVERHEAD_BYTES as i64 + i64::from(batch_length);
        if batch_length < (HEADER_BYTES - BATCH_OVERHEAD_BYTES) as i32
            || size_bytes > BATCH_BYTES_MAX as i64
        {
            return Ok(invalid(
                position,
                format!("impossible batch length {batch_length}"),
            ));
        }
        let size_bytes = size_bytes as u64;
        if size_bytes > available {
            return Ok(invalid(
                position,
                format!("batch of {size_bytes} bytes runs past the end ({available} bytes left)"),
            ));
        }
        let needed = if self.verify_crc {
            size_bytes as usize
        } else {
            HEADER_BYTES
        };
        let verify_crc = self.verify_crc;
        let Some(bytes) = self.fill(position, needed)? else {
            return Ok(invalid(position, "file shorter than expected".into()));
        };
        if bytes[16] as i8 != MAGIC_V2 {
            return Ok(invalid(
                position,
                format!("magic byte {} is not 2", bytes[16] as i8),
            ));
        }
        let header = match BatchHeader::parse(bytes) {
            Ok(header) => header,
            Err(e) => return Ok(invalid(position, e.to_string())),
        };
        if verify_crc {
            let computed = crc32c::crc32c(&bytes[21..]);
            if computed != header.crc {
                return Ok(invalid(
                    position,
                    format!(
                        "CRC-32C mismatch: stored {:#010x}, computed {computed:#010x}",
                        header.crc
                    ),
                ));
            }
        }
        if header.last_offset_delta < 0 {
            return Ok(invalid(
                position,
                format!("negative last offset delta {}", header.last_offset_delta),
            ));
        }
        self.position += size_bytes;
        Ok(Step::Batch(Scanned {
            position,
            header,
            size_bytes,
        }))
    }

    /// Makes `[at, at + len)` resident in the buffer and returns it; `None` if the file ends
    /// first.
    fn fill(&mut self, at: u64, len: usize) -> Result<Option<&[u8]>> {
        let covered = at >= self.buffer_start
            && at + len as u64 <= self.buffer_start + self.buffer.len() as u64;
        if !covered {
            let want = len
                .max(self.chunk_bytes)
                .min((self.end - at) as usize)
                .max(len);
            self.buffer.clear();
            read_appending(self.file, &mut self.buffer, want, at).map_err(io(self.path))?;
            self.buffer_start = at;
            self.chunk_bytes = (self.chunk_bytes * 2).min(self.chunk_bytes_max);
        }
        let from = (at - self.buffer_start) as usize;
        Ok(self.buffer.get(from..from + len))
    }
}

/// Reads into `buffer` at `position` until it is full or the file ends.
pub(crate) fn read_up_to(file: &File, buffer: &mut [u8], position: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buffer.len() {
        match file.read_at(&mut buffer[done..], position + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Appends up to `len` bytes read at `position` to `out`, stopping early only where the file
/// ends. Reads straight into the vector's spare capacity: a read of a megabyte costs one copy
/// from the page cache, not a zero-fill and a copy.
#[allow(unsafe_code)]
pub(crate) fn read_appending(
    file: &File,
    out: &mut Vec<u8>,
    len: usize,
    position: u64,
) -> std::io::Result<()> {
    out.reserve(len);
    let first = out.len();
    let end = first + len;
    while out.len() < end {
        let before = out.len();
        let spare = &mut out.spare_capacity_mut()[..end - before];
        match rustix::io::pread(file, spare, position + (before - first) as u64) {
            Ok(([], _)) => break,
            Ok((filled, _)) => {
                let filled_len = filled.len();
                // SAFETY: `pread` initialised the first `filled_len` bytes of the spare
                // capacity (rustix hands them back as `&mut [u8]`), and `before + filled_len`
                // is within the capacity reserved above.
                unsafe { out.set_len(before + filled_len) };
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn invalid(position: u64, reason: String) -> Step {
    Step::Invalid { position, reason }
}
