//! `memcmp` and `bcmp` for the filter's build, eight bytes per step. The wasm32 versions in
//! Rust's compiler-builtins (weak symbols, so these replace them) compare one byte per loop,
//! and a verified-token cache hit compares the whole token (about 800 bytes) with its cache key:
//! that byte loop was the largest single item of a warm request, 18% of its wasm time.

use core::ptr::read_unaligned;

/// # Safety
/// `a` and `b` are valid for reads of `n` bytes (the C contract of `memcmp`).
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    // SAFETY: every read covers bytes `i..i + 8` or `i` with `i + 8 <= n` or `i < n`, inside
    // both ranges the caller vouches for; unaligned reads are allowed by `read_unaligned`.
    unsafe {
        while i + 8 <= n {
            let x = read_unaligned(a.add(i).cast::<u64>());
            let y = read_unaligned(b.add(i).cast::<u64>());
            if x != y {
                break;
            }
            i += 8;
        }
        while i < n {
            let (x, y) = (*a.add(i), *b.add(i));
            if x != y {
                return i32::from(x) - i32::from(y);
            }
            i += 1;
        }
    }
    0
}

/// # Safety
/// As [`memcmp`].
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: the same contract.
    unsafe { memcmp(a, b, n) }
}
