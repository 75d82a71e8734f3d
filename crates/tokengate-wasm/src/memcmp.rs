//! A word-at-a-time `memcmp`/`bcmp` for wasm32.
//!
//! The `compiler_builtins` versions linked on wasm32 compare one byte per iteration, and every
//! string comparison goes through them: the verified-token cache compares the whole token
//! (about 1 KiB for Cognito) on each hit, where they took half of the hit's time (measured with
//! `node --cpu-prof` on a names-kept build). On wasm32 this module exports strong definitions
//! of the two symbols, which take precedence over the weak builtins at link time. The Envoy
//! filter (`tokengate-proxy`) compiles this same file into its module.

/// Three-way comparison of `n` bytes at `a` and `b`, with C `memcmp` semantics (the sign of
/// the first differing byte pair, compared as unsigned bytes).
///
/// # Safety
/// `a` and `b` must be valid for reads of `n` bytes.
pub unsafe fn compare(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    // SAFETY: every read is at an offset below n from a or b, within the caller's promise;
    // read_unaligned has no alignment requirement. Nothing here calls memcmp (no recursion).
    unsafe {
        // With simd128, 64 bytes per step first (wasm's v128 loads need no alignment).
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        {
            use core::arch::wasm32::{v128, v128_any_true, v128_load, v128_or, v128_xor};
            let differ = |at: usize| {
                v128_xor(
                    v128_load(a.add(at).cast::<v128>()),
                    v128_load(b.add(at).cast::<v128>()),
                )
            };
            while i + 64 <= n {
                let d = v128_or(
                    v128_or(differ(i), differ(i + 16)),
                    v128_or(differ(i + 32), differ(i + 48)),
                );
                if v128_any_true(d) {
                    break;
                }
                i += 64;
            }
        }
        let word = |p: *const u8, at: usize| core::ptr::read_unaligned(p.add(at).cast::<u64>());
        // Four words per step and one branch: a cache hit compares a ~1 KiB token that is
        // equal to the end. A step that differs falls through to the word loop, which finds
        // the first differing word.
        while i + 32 <= n {
            let d = (word(a, i) ^ word(b, i))
                | (word(a, i + 8) ^ word(b, i + 8))
                | (word(a, i + 16) ^ word(b, i + 16))
                | (word(a, i + 24) ^ word(b, i + 24));
            if d != 0 {
                break;
            }
            i += 32;
        }
        while i + 8 <= n {
            let x = core::ptr::read_unaligned(a.add(i).cast::<u64>());
            let y = core::ptr::read_unaligned(b.add(i).cast::<u64>());
            if x != y {
                // Little-endian loads: byte-swapped, integer order is byte order.
                let (x, y) = (u64::from_le(x).swap_bytes(), u64::from_le(y).swap_bytes());
                return if x < y { -1 } else { 1 };
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

/// `memcmp` (C11 §7.24.4.1).
///
/// # Safety
/// The C contract: `a` and `b` valid for reads of `n` bytes. The callers are the standard
/// library and compiler-generated code, which uphold it.
#[cfg(target_arch = "wasm32")]
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { compare(a, b, n) }
}

/// `bcmp`: zero when the `n` bytes are equal (LLVM emits it for equality-only comparisons).
///
/// # Safety
/// As [`memcmp`].
#[cfg(target_arch = "wasm32")]
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { compare(a, b, n) }
}

#[cfg(test)]
mod tests {
    use super::compare;

    fn sign(o: core::cmp::Ordering) -> i32 {
        o as i32
    }

    /// Byte by byte, without the slice comparison (which calls `memcmp`, this module's own on
    /// wasm32).
    fn reference(a: &[u8], b: &[u8]) -> core::cmp::Ordering {
        for (x, y) in a.iter().zip(b) {
            if x != y {
                return if x < y {
                    core::cmp::Ordering::Less
                } else {
                    core::cmp::Ordering::Greater
                };
            }
        }
        a.len().cmp(&b.len())
    }

    #[test]
    fn agrees_with_slice_ordering_at_every_length_and_position() {
        // Past 64 bytes: the simd128 loop's steps, then the word and byte loops.
        for n in 0..200usize {
            let a: Vec<u8> = (0..n).map(|i| (i * 37 % 251) as u8).collect();
            // SAFETY: both slices hold n bytes.
            assert_eq!(unsafe { compare(a.as_ptr(), a.as_ptr(), n) }, 0);
            for at in 0..n {
                for delta in [1u8, 0x80, 0xff] {
                    let mut b = a.clone();
                    b[at] = b[at].wrapping_add(delta);
                    // SAFETY: both slices hold n bytes.
                    let got = unsafe { compare(a.as_ptr(), b.as_ptr(), n) };
                    assert_eq!(
                        got.signum(),
                        sign(reference(&a, &b)),
                        "n={n} at={at} delta={delta}"
                    );
                }
            }
        }
    }
}
