//! Shared pieces of coffer's fuzz targets (docs/fuzzing.md).
//!
//! The main workspace forbids `unsafe`; this crate is outside it and needs it once, to
//! implement [`GlobalAlloc`] for [`CappedAlloc`].

use std::alloc::{GlobalAlloc, Layout, System};

/// The largest single allocation a target may make. A decoder that sizes a buffer from a
/// length field it has not checked (a `u64` of 2^60, say) asks for more than this and the
/// run aborts with `memory allocation of N bytes failed`, which libFuzzer records as a
/// crash. Virtual reservations count too: `Vec::with_capacity(1 << 30)` is flagged even
/// though Linux would never commit the pages, which RSS limits cannot see.
pub const ALLOCATION_CAP: usize = 256 << 20;

/// The system allocator, refusing any single allocation above [`ALLOCATION_CAP`].
pub struct CappedAlloc;

// SAFETY: every method forwards to `System` with the caller's arguments, or returns null,
// which `GlobalAlloc` allows for any failed allocation.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CappedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOCATION_CAP {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOCATION_CAP {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; `ptr` came from `System` through this allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > ALLOCATION_CAP {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Splits fuzz input into control bytes and the rest, without ever failing: missing
/// control bytes read as 0.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Wraps the raw fuzz input.
    #[must_use]
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// The next byte (0 when exhausted).
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// The next `N` bytes, zero-padded when exhausted.
    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        out
    }

    /// A prefix whose length is given by the next byte (at most what is left).
    pub fn short(&mut self) -> &'a [u8] {
        let n = usize::from(self.byte()).min(self.data.len());
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        head
    }

    /// Everything left.
    #[must_use]
    pub fn rest(self) -> &'a [u8] {
        self.data
    }
}
