//! Free lists for small blocks in front of the module's allocator.
//!
//! An uncached verification allocates a couple of dozen small blocks (a string per claim name
//! and value, the decoded segments) and frees them all when it ends; TLSF splits and coalesces
//! blocks on each of those calls. Here a freed block of up to [`LARGEST`] bytes goes onto the
//! list of its size class and the next allocation of that class takes it back: a pointer pop
//! and push. Each list keeps at most [`KEEP`] blocks (beyond that they go back to the inner
//! allocator), so at most `KEEP × (8 + 16 + … + 64)` bytes (147 KiB) stay set aside.
//!
//! For single-threaded wasm only (no `atomics` target feature): the lists have no lock.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr;

/// Size classes are multiples of this (and blocks are aligned to it).
const GRAIN: usize = 8;
/// Classes: 8, 16, …, 64 bytes.
const CLASSES: usize = 8;
/// The largest size served from the lists.
const LARGEST: usize = GRAIN * CLASSES;
/// Most blocks one list keeps.
const KEEP: u32 = 512;

#[derive(Clone, Copy)]
struct List {
    head: *mut u8,
    len: u32,
}

/// `inner` with free lists for blocks of up to [`LARGEST`] bytes aligned to at most [`GRAIN`].
pub struct Pooled<A> {
    inner: A,
    lists: UnsafeCell<[List; CLASSES]>,
}

// SAFETY: only used as the allocator of a single-threaded module (see the module docs and the
// `cfg` where it is installed): no two threads ever reach the lists.
unsafe impl<A: Sync> Sync for Pooled<A> {}

impl<A> Pooled<A> {
    /// Empty lists in front of `inner`.
    pub const fn new(inner: A) -> Pooled<A> {
        Pooled {
            inner,
            lists: UnsafeCell::new(
                [List {
                    head: ptr::null_mut(),
                    len: 0,
                }; CLASSES],
            ),
        }
    }

    /// The list for `class`; `None` never happens for a class from [`class_of`].
    ///
    /// # Safety
    /// No other reference to the lists may be live (single-threaded, not re-entered).
    #[allow(clippy::mut_from_ref)]
    unsafe fn list(&self, class: usize) -> Option<&mut List> {
        // SAFETY: the caller's promise; the cell is only reached through here.
        unsafe { (*self.lists.get()).get_mut(class) }
    }
}

/// The size class of `layout`, or `None` when the inner allocator serves it.
fn class_of(layout: Layout) -> Option<usize> {
    if layout.size() == 0 || layout.size() > LARGEST || layout.align() > GRAIN {
        return None;
    }
    Some((layout.size() - 1) / GRAIN)
}

/// The layout every block of `class` has in the inner allocator.
fn block(class: usize) -> Layout {
    // (class + 1) * GRAIN ≤ LARGEST, and GRAIN is a power of two: always a valid layout.
    Layout::from_size_align((class + 1) * GRAIN, GRAIN).unwrap_or(Layout::new::<u64>())
}

// SAFETY: every block handed out is at least `layout.size()` bytes (its class's size) and
// aligned to `GRAIN` ≥ `layout.align()`; a block is on a list only after it was freed, and is
// taken off before it is handed out again; blocks go back to the inner allocator with the
// layout they were taken with (`block(class)`).
unsafe impl<A: GlobalAlloc> GlobalAlloc for Pooled<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(layout) else {
            // SAFETY: forwarded contract.
            return unsafe { self.inner.alloc(layout) };
        };
        // SAFETY: single-threaded, and nothing below allocates.
        if let Some(list) = unsafe { self.list(class) } {
            let p = list.head;
            if !p.is_null() {
                // SAFETY: a listed block is free, at least GRAIN bytes and GRAIN-aligned; its
                // first word holds the next block.
                list.head = unsafe { ptr::read(p.cast::<*mut u8>()) };
                list.len -= 1;
                return p;
            }
        }
        // SAFETY: a valid, non-zero-size layout.
        unsafe { self.inner.alloc(block(class)) }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        let Some(class) = class_of(layout) else {
            // SAFETY: forwarded contract (it came from the inner allocator with this layout).
            return unsafe { self.inner.dealloc(p, layout) };
        };
        // SAFETY: single-threaded, and nothing below allocates.
        if let Some(list) = unsafe { self.list(class) } {
            if list.len < KEEP {
                // SAFETY: the block is ours again, GRAIN-aligned and at least GRAIN bytes.
                unsafe { ptr::write(p.cast::<*mut u8>(), list.head) };
                list.head = p;
                list.len += 1;
                return;
            }
        }
        // SAFETY: the block was taken from the inner allocator as `block(class)`.
        unsafe { self.inner.dealloc(p, block(class)) }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller promises new_size, rounded up to the alignment, fits in isize.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class_of(layout), class_of(new_layout)) {
            // SAFETY: forwarded contract.
            (None, None) => unsafe { self.inner.realloc(p, layout, new_size) },
            (Some(a), Some(b)) if a == b => p,
            _ => {
                // SAFETY: a valid layout; the old block holds layout.size() readable bytes
                // and the new one new_size writable ones; they are distinct blocks.
                unsafe {
                    let q = self.alloc(new_layout);
                    if !q.is_null() {
                        ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                        self.dealloc(p, layout);
                    }
                    q
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;

    /// Random allocations, frees and reallocs through the lists: every live block keeps the
    /// bytes written into it, no two live blocks overlap, every pointer is aligned.
    #[test]
    fn blocks_keep_their_bytes_and_never_overlap() {
        let pool = Pooled::new(System);
        let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for step in 0..200_000u32 {
            let r = next();
            let fill = (step % 251) as u8;
            if live.len() < 2_000 && (r % 3 != 0 || live.is_empty()) {
                let size = 1 + (next() % 100) as usize;
                let align = 1 << (next() % 5);
                let layout = Layout::from_size_align(size, align).unwrap();
                let p = unsafe { pool.alloc(layout) };
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0);
                unsafe { ptr::write_bytes(p, fill, size) };
                live.push((p, layout, fill));
            } else {
                let i = (next() % live.len() as u64) as usize;
                let (p, layout, fill) = live.swap_remove(i);
                let bytes = unsafe { std::slice::from_raw_parts(p, layout.size()) };
                assert!(bytes.iter().all(|&b| b == fill), "block changed");
                if r % 2 == 0 {
                    unsafe { pool.dealloc(p, layout) };
                } else {
                    let new_size = 1 + (next() % 100) as usize;
                    let q = unsafe { pool.realloc(p, layout, new_size) };
                    assert_eq!(q as usize % layout.align(), 0);
                    let kept =
                        unsafe { std::slice::from_raw_parts(q, layout.size().min(new_size)) };
                    assert!(kept.iter().all(|&b| b == fill), "realloc lost bytes");
                    let layout = Layout::from_size_align(new_size, layout.align()).unwrap();
                    unsafe { ptr::write_bytes(q, fill, new_size) };
                    live.push((q, layout, fill));
                }
            }
            if step % 1_000 == 0 {
                let mut spans: Vec<(usize, usize)> = live
                    .iter()
                    .map(|(p, l, _)| (*p as usize, *p as usize + l.size()))
                    .collect();
                spans.sort_unstable();
                assert!(
                    spans.windows(2).all(|w| w[0].1 <= w[1].0),
                    "live blocks overlap"
                );
            }
        }
        for (p, layout, _) in live {
            unsafe { pool.dealloc(p, layout) };
        }
        // The lists hold no more than KEEP blocks each.
        for class in 0..CLASSES {
            let list = unsafe { pool.list(class) }.unwrap();
            assert!(list.len <= KEEP);
        }
    }

    #[test]
    fn classes_cover_small_blocks_with_small_alignment_only() {
        let l = |size, align| Layout::from_size_align(size, align).unwrap();
        assert_eq!(class_of(l(0, 1)), None);
        assert_eq!(class_of(l(1, 1)), Some(0));
        assert_eq!(class_of(l(8, 8)), Some(0));
        assert_eq!(class_of(l(9, 4)), Some(1));
        assert_eq!(class_of(l(64, 8)), Some(7));
        assert_eq!(class_of(l(65, 1)), None);
        assert_eq!(class_of(l(8, 16)), None);
        for class in 0..CLASSES {
            assert_eq!(block(class).size(), (class + 1) * GRAIN);
        }
    }
}
