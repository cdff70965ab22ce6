//! The process allocator: the system allocator, except that allocations of 1 GiB or more
//! are reserved lazily (`mmap` with `MAP_NORESERVE`).
//!
//! Why: Kafka request decoding (the kafka-protocol crate) reserves room for every element an
//! array claims before reading one, so a 14-byte request claiming 2^31 topics asks for
//! hundreds of GiB. With the kernel's default overcommit heuristic such a request fails, and
//! Rust aborts the process on allocation failure: one packet would kill the broker. Reserved
//! lazily, the address range costs nothing until written; the decoder then runs out of
//! input, returns an error, and the range is unmapped. Legitimate allocations this large do
//! not occur (requests are at most `socket.request.max.bytes`), and if one did it would
//! behave as ordinary overcommitted memory does.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};

use rustix::mm::{MapFlags, ProtFlags, mmap_anonymous, munmap};

/// Allocations at least this large are mapped lazily.
const LAZY_BYTES_MIN: usize = 1 << 30;
/// Pages are this aligned; larger alignments go to the system allocator.
const PAGE_ALIGNMENT: usize = 4096;

pub(crate) struct Allocator;

fn lazy(layout: Layout) -> bool {
    layout.size() >= LAZY_BYTES_MIN && layout.align() <= PAGE_ALIGNMENT
}

// SAFETY: every pointer handed out comes from `System` or from `mmap_anonymous` of at least
// `layout.size()` bytes (page-aligned, which satisfies `layout.align()` by `lazy`), and each
// is released by the same mechanism that made it, decided by the same `lazy(layout)` test
// on the layout Rust guarantees to pass back unchanged.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !lazy(layout) {
            // SAFETY: forwarded with the caller's guarantees.
            return unsafe { System.alloc(layout) };
        }
        // SAFETY: a fresh anonymous private mapping; no existing memory is touched.
        let mapped = unsafe {
            mmap_anonymous(
                std::ptr::null_mut(),
                layout.size(),
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )
        };
        mapped.map_or(std::ptr::null_mut(), |p| p.cast())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !lazy(layout) {
            // SAFETY: forwarded with the caller's guarantees.
            return unsafe { System.alloc_zeroed(layout) };
        }
        // Anonymous mappings are zero-filled.
        // SAFETY: as for `alloc`.
        unsafe { self.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !lazy(layout) {
            // SAFETY: `ptr` came from `System.alloc` with this layout.
            return unsafe { System.dealloc(ptr, layout) };
        }
        // SAFETY: `ptr` is the start of a mapping of `layout.size()` bytes made by `alloc`.
        // munmap cannot fail for a mapping we made; were it to, leaking beats aborting.
        let _ = unsafe { munmap(ptr.cast(), layout.size()) };
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` with `layout.align()` is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !lazy(layout) && !lazy(new_layout) {
            // SAFETY: forwarded with the caller's guarantees.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: allocate, copy the smaller size, free the old block: each step upholds the
        // contracts above.
        unsafe {
            let new_ptr = self.alloc(new_layout);
            if !new_ptr.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new_ptr, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new_ptr
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_huge_reservation_succeeds_and_costs_nothing_until_used() {
        // Far beyond this machine's memory: the system allocator would fail and abort.
        let mut claimed: Vec<[u8; 128]> = Vec::with_capacity(1 << 31);
        claimed.push([7; 128]);
        assert_eq!(claimed[0][127], 7);
        let mut grown = vec![1u8; 16];
        grown.reserve(3 << 30);
        grown.extend_from_slice(&[2; 16]);
        assert_eq!(&grown[14..18], &[1, 1, 2, 2]);
    }
}
