//! The global allocator of the `switchyard` binary and of the benches: mimalloc, asked the way
//! its own `malloc` is fastest.
//!
//! Parsing and mapping events allocate many small, short-lived strings, maps and vectors, which
//! glibc's malloc serves markedly slower (BENCHMARKS.md, "peers"). The `mimalloc` crate's
//! allocator sends every request through `mi_malloc_aligned`, even those whose alignment any
//! block of mimalloc's size classes already has; in mimalloc v3 that path costs more per call and
//! sends some sizes (48 bytes, for one) down its over-allocating generic path (open upstream:
//! purpleprotocol/mimalloc_rust#170). [`Allocator`] asks `mi_malloc` for those, as Rust's own
//! `System` allocator asks `malloc`, and `mi_malloc_aligned` for the rest: 1% fewer instructions
//! for `map`, ~4% for `serve` (BENCHMARKS.md, round eleven).

// A global allocator is unsafe by its nature: it hands out raw memory. This crate is only that.
#![allow(unsafe_code)]

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;
use libmimalloc_sys as mi;

/// The alignment every block `mi_malloc` returns has, for a size of at least that much:
/// `MI_MAX_ALIGN_SIZE`, 16 bytes on the targets Switchyard is built for.
const PLAIN_ALIGN: usize = 16;

/// mimalloc as the global allocator (`#[global_allocator] static A: Allocator = Allocator;`).
pub struct Allocator;

/// Whether `mi_malloc` of `size` bytes is aligned to `align` without asking: blocks are aligned
/// to [`PLAIN_ALIGN`] and, below it, to the largest power of two that divides their size class,
/// so an alignment of at most 16 that divides the size is met. (The test below checks it.)
#[inline]
fn plain(size: usize, align: usize) -> bool {
    align <= PLAIN_ALIGN && size.is_multiple_of(align) && align <= size
}

// SAFETY: each method forwards to the mimalloc function that has the `GlobalAlloc` contract for
// the layout at hand: `mi_malloc`/`mi_zalloc`/`mi_realloc` where `plain` says their blocks are
// aligned enough, the `_aligned` variants otherwise; `mi_free` frees blocks of either.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let (size, align) = (layout.size(), layout.align());
        // SAFETY: mimalloc's allocation functions accept any size and a power-of-two alignment.
        unsafe {
            match plain(size, align) {
                true => mi::mi_malloc(size).cast(),
                false => mi::mi_malloc_aligned(size, align).cast(),
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let (size, align) = (layout.size(), layout.align());
        // SAFETY: as in `alloc`.
        unsafe {
            match plain(size, align) {
                true => mi::mi_zalloc(size).cast(),
                false => mi::mi_zalloc_aligned(size, align).cast(),
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator, so from mimalloc.
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let align = layout.align();
        // SAFETY: `ptr` came from this allocator; the new block keeps `align` (as in `alloc`).
        unsafe {
            match plain(new_size, align) {
                true => mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast(),
                false => mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, align).cast(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every size up to 4 KiB and a few large ones, at every alignment up to 64 that divides them
    /// (and some that do not): blocks are aligned, writable, zeroed when asked, and keep their
    /// bytes when grown or shrunk.
    #[test]
    fn blocks_have_the_alignment_asked_for() {
        let sizes = (1..=4096).chain([8192, 65_536, 1 << 20, (1 << 20) + 24]);
        for size in sizes {
            for align in [1, 2, 4, 8, 16, 32, 64] {
                let layout = Layout::from_size_align(size, align).expect("a valid layout");
                check(layout);
            }
        }
    }

    fn check(layout: Layout) {
        let a = Allocator;
        let (size, align) = (layout.size(), layout.align());
        // SAFETY: the layouts are non-zero in size; each block is freed once, by this allocator.
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null(), "{size} bytes at {align}");
            assert_eq!(p as usize % align, 0, "{size} bytes at {align}");
            p.write_bytes(0xA5, size);
            let grown = a.realloc(p, layout, size * 2 + 8);
            assert_eq!(grown as usize % align, 0, "{size} bytes at {align}, grown");
            assert_eq!(*grown.add(size - 1), 0xA5, "{size} bytes at {align}, grown");
            a.dealloc(
                grown,
                Layout::from_size_align_unchecked(size * 2 + 8, align),
            );
            let z = a.alloc_zeroed(layout);
            assert_eq!(z as usize % align, 0, "{size} bytes at {align}, zeroed");
            assert!((0..size).all(|i| *z.add(i) == 0), "{size} bytes at {align}");
            a.dealloc(z, layout);
        }
    }
}
