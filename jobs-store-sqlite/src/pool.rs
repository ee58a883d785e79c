//! Large payload buffers kept for reuse.
//!
//! A large output streams through the daemon in chunks of up to a few
//! hundred KiB: read from the job, written to its data file, read back,
//! sent. Allocating a fresh buffer for each and freeing it after lets the
//! allocator hand the memory back to the system and fault it in again for
//! the next chunk, over and over. Buffers done with (written to the data
//! file, sent to a client) are given back here instead, and reads from the
//! store take them again. The pool keeps at most `KEEP_BYTES` of
//! capacity; what does not fit is freed.

use std::sync::Mutex;

/// Buffers smaller than this are not worth keeping.
const MIN_CAP: usize = 16 << 10;
/// Nor buffers larger than this (a rare huge record).
const MAX_CAP: usize = 2 << 20;
/// The most capacity the pool keeps.
const KEEP_BYTES: usize = 4 << 20;

struct Pool {
    free: Vec<Vec<u8>>,
    bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    free: Vec::new(),
    bytes: 0,
});

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    // Every operation leaves the list consistent before it could panic.
    POOL.lock().unwrap_or_else(|p| p.into_inner())
}

/// An empty buffer with room for `len` bytes, reused if one fits.
pub fn take(len: usize) -> Vec<u8> {
    if (MIN_CAP..=MAX_CAP).contains(&len) {
        let mut p = pool();
        // A buffer that fits without wasting most of itself.
        let fit = p
            .free
            .iter()
            .rposition(|b| b.capacity() >= len && b.capacity() / 4 <= len);
        if let Some(i) = fit {
            let b = p.free.swap_remove(i);
            p.bytes -= b.capacity();
            return b;
        }
    }
    Vec::with_capacity(len)
}

/// Gives a buffer back for reuse (or frees it).
pub fn give(mut buf: Vec<u8>) {
    let cap = buf.capacity();
    if !(MIN_CAP..=MAX_CAP).contains(&cap) {
        return;
    }
    let mut p = pool();
    if p.bytes + cap <= KEEP_BYTES {
        buf.clear();
        p.bytes += cap;
        p.free.push(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_and_the_pool_stays_bounded() {
        let mut b = take(256 << 10);
        b.extend_from_slice(&[1; 1000]);
        let at = b.as_ptr();
        give(b);
        // Other tests may use the pool at the same time: look for ours.
        let mut got = Vec::new();
        let mut found = false;
        for _ in 0..64 {
            let b = take(200 << 10);
            assert!(b.is_empty() && b.capacity() >= 200 << 10);
            found |= b.as_ptr() == at;
            got.push(b);
        }
        assert!(found, "the buffer given back was reused");
        for b in got {
            give(b);
        }
        assert!(pool().bytes <= KEEP_BYTES);
        give(Vec::with_capacity(MAX_CAP + 1));
        give(Vec::with_capacity(100));
        assert!(pool()
            .free
            .iter()
            .all(|b| (MIN_CAP..=MAX_CAP).contains(&b.capacity())));
    }
}
