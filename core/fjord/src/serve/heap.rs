//! How the broker's process uses the C allocator's heap (glibc on Linux).

/// Freed blocks up to this size stay in the allocator's heap for reuse (glibc's mmap
/// threshold; 32 MiB is its maximum on 64-bit).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const HEAP_BLOCK_BYTES_MAX: i32 = 32 << 20;
/// Free memory at the top of a heap is returned to the kernel only beyond this much.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const HEAP_TRIM_BYTES: i32 = 512 << 20;

/// Tunes glibc so that request buffers (about 1 MiB each, allocated per produce request and
/// freed once the batch is in the log) reuse memory the process already has. By default
/// glibc serves such blocks with fresh `mmap`s or trims them back to the kernel soon after
/// they are freed, so every request's first write to its buffer takes a page fault per 4 KiB
/// page, and in a memory cgroup that is full of page cache each fault also has to reclaim a
/// page first: measured at 16% of the broker's CPU time when producing. Call before any
/// thread starts. Costs resident memory: what was in use at the peak, plus up to the trim
/// threshold of free memory in each glibc arena (threads get arenas of their own, up to 8
/// per core); other allocators ignore it.
pub(super) fn retain_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: mallopt only changes allocator parameters; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, HEAP_BLOCK_BYTES_MAX);
        libc::mallopt(libc::M_TRIM_THRESHOLD, HEAP_TRIM_BYTES);
    }
}
