//! The process's allocator settings (glibc's malloc; other C libraries keep their defaults).
//!
//! glibc maps a block of 128 KiB or more on its own and unmaps it when freed, but after such a
//! block is freed it raises that threshold to the block's size (up to 32 MiB): from then on
//! blocks that large come from its arenas, which keep them when freed. One argon2 area (7 to
//! 19 MiB, `clients/secret_hash.rs`) was enough to leave the arenas holding it for good. A
//! fixed threshold keeps every large block mapped for its own life, so memory a step used
//! once is given back when the step ends.

/// Blocks from this size on are mapped for themselves and unmapped when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MAP_FROM_BYTES: libc::c_int = 256 * 1024;

/// Applies the settings; call once, first thing in `main`.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes malloc's parameters; it is called before any other
    // thread exists, and a value it refuses leaves the default in force (returns 0).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MAP_FROM_BYTES);
    }
}
