//! Positional vectored writes: many slices written back to back at one file offset with as
//! few `pwritev` calls as the kernel allows, retried on interruption and short writes.

use std::fs::File;
use std::io::{self, IoSlice};

/// Slices per `pwritev` call, at most (Linux's `IOV_MAX`).
const IOV_MAX: usize = 1024;

/// Writes `parts` one after the other starting at `offset`, all of them or an error.
pub(super) fn write_all_vectored_at(file: &File, parts: &[&[u8]], offset: u64) -> io::Result<()> {
    let mut offset = offset;
    // Where the next byte to write is: which part, and how far into it.
    let (mut part, mut within) = (0usize, 0usize);
    while part < parts.len() {
        let slices: Vec<IoSlice<'_>> = parts[part..]
            .iter()
            .enumerate()
            .map(|(i, p)| if i == 0 { &p[within..] } else { *p })
            .filter(|p| !p.is_empty())
            .take(IOV_MAX)
            .map(IoSlice::new)
            .collect();
        if slices.is_empty() {
            return Ok(());
        }
        let written = match rustix::io::pwritev(file, &slices, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => written,
            Err(rustix::io::Errno::INTR) => continue,
            Err(error) => return Err(error.into()),
        };
        offset += written as u64;
        // Step over what was written.
        let mut left = written;
        while left > 0 && part < parts.len() {
            let remaining = parts[part].len() - within;
            if left >= remaining {
                left -= remaining;
                part += 1;
                within = 0;
            } else {
                within += left;
                left = 0;
            }
        }
        while part < parts.len() && parts[part].len() == within {
            part += 1;
            within = 0;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn writes_every_part_in_order_past_iov_max() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(dir.path().join("f"))?;
        let owned: Vec<Vec<u8>> = (0..2500u32)
            .map(|i| vec![(i % 251) as u8; (i % 7) as usize])
            .collect();
        let parts: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        file.write_all_at(b"head", 0)?;
        write_all_vectored_at(&file, &parts, 4)?;
        let expected: Vec<u8> = b"head".iter().copied().chain(owned.concat()).collect();
        let mut read = vec![0u8; expected.len()];
        file.read_exact_at(&mut read, 0)?;
        assert_eq!(read, expected);
        Ok(())
    }
}
