//! How the C allocator (glibc malloc) hands freed memory back, per phase of a run.
//!
//! The ingest allocates and frees a batch's buffers (a few MiB each) thousands of times on
//! several threads. glibc's default raises its mmap threshold after the first large free,
//! so those buffers come from the heap arenas and stay in the process when freed: a
//! region's ingest peaked at ~1 GiB RSS while its live data was ~550 MiB. Keeping the
//! threshold at 1 MiB during the ingest returns them on free (2026-12-06, core ingest:
//! region peak RSS ~1,000 → ~600 MiB, county ~470 → ~370 MiB, for ~0.3 s more system CPU
//! at county, a few per cent of wall time; 128 KiB saved another 50 MiB but cost 5–7% of
//! wall time, 4 MiB kept most of the waste). The metric queries run faster with the default behaviour
//! (county catalogue 29 s → 35 s under a fixed threshold), so the setting is lifted before
//! them. Elsewhere than glibc this does nothing.

/// Large allocations straight from and back to the OS (the ingest).
pub fn return_freed_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; any value is valid.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 32 << 20);
    }
}

/// Large allocations kept for reuse, as glibc settles by default (the queries); the
/// ingest's freed memory is trimmed first.
pub fn reuse_freed_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: as above; malloc_trim only returns free memory to the OS.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
        libc::malloc_trim(0);
    }
}
