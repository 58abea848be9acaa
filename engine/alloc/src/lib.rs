//! The global allocator of the `switchyard` binary and of the benches: mimalloc, asked the way
//! its own `malloc` is fastest.
//!
//! Parsing and mapping events allocate many small, short-lived strings, maps and vectors, which
//! glibc's malloc serves markedly slower (BENCHMARKS.md, "peers"). The `mimalloc` crate's
//! allocator sends every request through `mi_malloc_aligned`, even those whose alignment any
//! block of mimalloc's size classes already has; in mimalloc v3 that path costs more per call and,
//! whenever the size's page has no free block at hand, sends some sizes (48 bytes, for one) down
//! its over-allocating generic path (open upstream: purpleprotocol/mimalloc_rust#170).
//! [`Allocator`] asks `mi_malloc` for those, as Rust's own `System` allocator asks `malloc`, and
//! `mi_malloc_aligned` for the rest: 1.0% fewer instructions for `map` over 100,000 events, 2.7%
//! per event for `serve` (BENCHMARKS.md, round eleven).
//!
//! Two switches for a long-running, many-threaded process (`serve`): [`without_huge_pages`] turns
//! transparent huge pages off, and [`reclaim_pages_on_free`] lets a thread take over the pages of
//! the blocks it frees.

// A global allocator is unsafe by its nature: it hands out raw memory. This crate is that, one
// switch of how the kernel backs that memory (`without_huge_pages`, itself safe: `rustix`), and one
// of mimalloc's options set through its C interface (`reclaim_pages_on_free`, an FFI call).
#![allow(unsafe_code)]

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;
use libmimalloc_sys as mi;

/// The alignment every block `mi_malloc` returns has, for a size of at least that much:
/// `MI_MAX_ALIGN_SIZE`, 16 bytes on the targets Switchyard is built for.
const PLAIN_ALIGN: usize = 16;

/// mimalloc as the global allocator (`#[global_allocator] static A: Allocator = Allocator;`).
pub struct Allocator;

/// Whether `mi_malloc` of `size` bytes is aligned to `align` without asking. In mimalloc v3 on
/// 64-bit targets, size classes above 8 bytes are whole multiples of 16 (`MI_ALIGN2W`,
/// src/page-queue.c) and pages start 16-aligned (src/arena.c), so every block is aligned to the
/// largest power of two up to 16 that divides its size class, which a size that `align` divides
/// rounds up to. The test below is a smoke check: it fails for a rule that ignores the size, but
/// mimalloc happens to align more than it promises, so it cannot show the limit of 16 itself.
#[inline]
fn malloc_is_aligned_enough(size: usize, align: usize) -> bool {
    align <= PLAIN_ALIGN && size.is_multiple_of(align) && align <= size
}

/// A block for `layout` from mimalloc's `plain` function (`mi_malloc`, `mi_zalloc`) where
/// [`malloc_is_aligned_enough`], else from its `aligned` one.
///
/// # Safety
/// `plain` and `aligned` are one pair of mimalloc's allocation functions.
#[inline(always)]
unsafe fn allocate(
    layout: Layout,
    plain: unsafe extern "C" fn(usize) -> *mut c_void,
    aligned: unsafe extern "C" fn(usize, usize) -> *mut c_void,
) -> *mut u8 {
    let (size, align) = (layout.size(), layout.align());
    // SAFETY: the caller passes mimalloc's functions, which take any size and a power-of-two
    // alignment (a `Layout`'s always is).
    unsafe {
        if malloc_is_aligned_enough(size, align) {
            plain(size).cast()
        } else {
            aligned(size, align).cast()
        }
    }
}

// SAFETY: each method forwards to the mimalloc function that has the `GlobalAlloc` contract for
// the layout at hand: `mi_malloc`/`mi_zalloc`/`mi_realloc` where `malloc_is_aligned_enough` says
// their blocks are aligned enough, the `_aligned` variants otherwise; `mi_free` frees either.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: mimalloc's allocation functions accept any size and a power-of-two alignment.
        unsafe { allocate(layout, mi::mi_malloc, mi::mi_malloc_aligned) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe { allocate(layout, mi::mi_zalloc, mi::mi_zalloc_aligned) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator, so from mimalloc.
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let align = layout.align();
        // SAFETY: `ptr` came from this allocator. `mi_realloc` either gives back `ptr`, which has
        // `align` already, or moves the bytes to a new block of `mi_malloc(new_size)`, which
        // `malloc_is_aligned_enough` says has it; `mi_realloc_aligned` takes any block of mimalloc.
        unsafe {
            if malloc_is_aligned_enough(new_size, align) {
                mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, align).cast()
            }
        }
    }
}

/// Turns transparent huge pages off for the rest of this process's life, unless `allow_thp` (the
/// value of `$MIMALLOC_ALLOW_THP`, mimalloc's own switch) is set: then mimalloc does as it says.
/// Answers whether they were turned off; always `false` off Linux.
///
/// mimalloc asks for huge pages for its arenas, and under `serve`'s churn (requests, queued
/// events, payloads) the kernel then zeroes a whole 2 MiB page for every fresh stretch an arena
/// touches: 26–28 % of `serve`'s CPU samples in the e2e bench's tmpfs runs. Without them, its
/// tmpfs runs were faster in six pairs of six (BENCHMARKS.md, round twenty-eight). `map`, short
/// and with a steady footprint, keeps them: it is slower without.
pub fn without_huge_pages(allow_thp: Option<&std::ffi::OsStr>) -> std::io::Result<bool> {
    if allow_thp.is_some() {
        return Ok(false);
    }
    #[cfg(target_os = "linux")]
    {
        rustix::thread::disable_transparent_huge_pages(true)?;
        Ok(true)
    }
    #[cfg(not(target_os = "linux"))]
    Ok(false)
}

/// The number of mimalloc's option `page_reclaim_on_free` (its place in `mi_option_t`,
/// include/mimalloc.h of mimalloc v3), which `libmimalloc-sys` does not name. A test holds it to
/// the name: mimalloc reads `$MIMALLOC_PAGE_RECLAIM_ON_FREE` into this option.
const PAGE_RECLAIM_ON_FREE: mi::mi_option_t = 35;

/// Lets a thread that frees a block of a page another thread has abandoned take that page over
/// (mimalloc's `page_reclaim_on_free = 1`; by default only the thread the page came from may),
/// unless `own_setting` (the value of `$MIMALLOC_PAGE_RECLAIM_ON_FREE`) is set: then mimalloc does
/// as it says. Answers whether the option was set. Call it before the process starts its threads.
///
/// `serve` parses an event on one worker thread and frees it on another, once it is delivered:
/// with the option, `serve` ran on 5–12 % less CPU per event in the e2e bench (medians of four
/// sets of pairs), for a peak RSS some 15 % higher (BENCHMARKS.md, round twenty-nine).
pub fn reclaim_pages_on_free(own_setting: Option<&std::ffi::OsStr>) -> bool {
    if own_setting.is_some() {
        return false;
    }
    // SAFETY: `mi_option_set` takes any option number and value; mimalloc stores the value.
    unsafe { mi::mi_option_set(PAGE_RECLAIM_ON_FREE, 1) };
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run in a child process of its own (so that mimalloc reads the variable afresh): the option
    /// number is the one mimalloc reads `$MIMALLOC_PAGE_RECLAIM_ON_FREE` into.
    #[test]
    fn the_option_number_is_page_reclaim_on_free() {
        const CHILD: &str = "SWITCHYARD_ALLOC_OPTION_CHILD";
        if std::env::var_os(CHILD).is_some() {
            // SAFETY: reading an option has no precondition.
            let value = unsafe { mi::mi_option_get(PAGE_RECLAIM_ON_FREE) };
            assert_eq!(
                value, 7,
                "option {PAGE_RECLAIM_ON_FREE} is not page_reclaim_on_free"
            );
            return;
        }
        let me = std::env::current_exe().expect("the test binary");
        let child = std::process::Command::new(me)
            .args([
                "--exact",
                "tests::the_option_number_is_page_reclaim_on_free",
            ])
            .env(CHILD, "1")
            .env("MIMALLOC_PAGE_RECLAIM_ON_FREE", "7")
            .output()
            .expect("the test binary runs");
        let said = String::from_utf8_lossy(&child.stdout);
        assert!(child.status.success(), "the child's check failed:\n{said}");
        assert!(said.contains("1 passed"), "the child ran no check:\n{said}");
    }

    #[test]
    fn reclaiming_on_free_is_set_unless_mimallocs_own_variable_is() {
        use std::ffi::OsStr;
        assert!(!reclaim_pages_on_free(Some(OsStr::new("0"))));
        assert!(reclaim_pages_on_free(None));
        // SAFETY: reading an option has no precondition.
        assert_eq!(unsafe { mi::mi_option_get(PAGE_RECLAIM_ON_FREE) }, 1);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn huge_pages_are_turned_off_unless_mimallocs_own_switch_is_set() {
        use std::ffi::OsStr;
        let before = rustix::thread::transparent_huge_pages_are_disabled().expect("prctl");
        assert!(!without_huge_pages(Some(OsStr::new("1"))).expect("no call"));
        let after = rustix::thread::transparent_huge_pages_are_disabled().expect("prctl");
        assert_eq!(after, before, "left alone when MIMALLOC_ALLOW_THP is set");
        assert!(without_huge_pages(None).expect("prctl"));
        assert!(rustix::thread::transparent_huge_pages_are_disabled().expect("prctl"));
    }

    /// Every size up to 4 KiB and a few large ones, at every alignment up to 64 that divides them
    /// (and some that do not): blocks are aligned, writable, zeroed when asked, and keep their
    /// bytes when grown (in place and moved) or shrunk.
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
        let what = format!("{size} bytes at {align}");
        // SAFETY: the layouts are non-zero in size; each block is freed once, by this allocator,
        // with the layout it has at that moment; only bytes within a block are read or written.
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null(), "{what}");
            assert_eq!(p as usize % align, 0, "{what}");
            for i in 0..size {
                p.add(i).write(i as u8);
            }
            // Grown a little (often in place), then past the block, then shrunk: aligned each
            // time, the bytes kept.
            let (mut block, mut known) = ((p, size), size);
            for new_size in [size + 1, size * 2 + 8, size / 2 + 1] {
                let (old, old_size) = block;
                let moved = a.realloc(
                    old,
                    Layout::from_size_align_unchecked(old_size, align),
                    new_size,
                );
                assert!(!moved.is_null(), "{what} to {new_size}");
                assert_eq!(moved as usize % align, 0, "{what} to {new_size}");
                known = known.min(new_size);
                assert!(
                    (0..known).all(|i| *moved.add(i) == i as u8),
                    "{what} to {new_size}"
                );
                block = (moved, new_size);
            }
            a.dealloc(block.0, Layout::from_size_align_unchecked(block.1, align));
            let z = a.alloc_zeroed(layout);
            assert_eq!(z as usize % align, 0, "{what}, zeroed");
            assert!((0..size).all(|i| *z.add(i) == 0), "{what}, zeroed");
            a.dealloc(z, layout);
        }
    }
}
