//! The budgets of a review of `.tf` source (HCL mode), which may come from
//! anyone who can open a pull request.
//!
//! Counted where the work is done (src/review/hcl_input.rs): the bytes of
//! every file read (`--max-input-mib`), resource instances across modules
//! (`--max-instances`), module calls (`--max-module-calls`) and the size of
//! one evaluated value (`--max-value-mib`). Two guards cover what happens
//! inside one expression's evaluation, where no count can be taken: the
//! wall time (`--max-seconds`, a [`Watchdog`] thread) and the memory held
//! (a limit the binary's allocator, [`Counting`], enforces while
//! [`guard_memory`] is on). Crossing any of them ends the review with exit
//! code 2 and a message naming the budget and the place being evaluated
//! ([`set_place`]); nothing is cut silently.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

/// HCL mode's budgets besides the input size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// Resource and data source instances (`count`, `for_each`), all
    /// modules together.
    pub instances: u64,
    /// Module calls read (a module called twice counts twice).
    pub module_calls: u64,
    /// Bytes of one evaluated value (a local, an argument, a `for_each`).
    pub value_bytes: u64,
    /// Wall time of the review, seconds.
    pub seconds: u64,
    /// Memory the review may hold, bytes (the binary's allocator enforces it).
    pub memory_bytes: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            instances: 10_000,
            module_calls: 500,
            value_bytes: 16 * 1024 * 1024,
            seconds: 120,
            memory_bytes: MEMORY_BUDGET_MIB * 1024 * 1024,
        }
    }
}

/// Bytes of a value (strings' lengths, plus a few bytes per element), or
/// more than `limit` as soon as that is certain.
pub fn value_size(v: &hcl::Value, limit: u64) -> u64 {
    let mut total = 0u64;
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        total += match v {
            hcl::Value::String(s) => s.len() as u64 + 8,
            hcl::Value::Array(a) => {
                stack.extend(a.iter());
                8
            }
            hcl::Value::Object(o) => {
                for (k, v) in o {
                    total += k.len() as u64 + 8;
                    stack.push(v);
                }
                8
            }
            _ => 8,
        };
        if total > limit {
            return total;
        }
    }
    total
}

const PLACE_MAX: usize = 240;
static PLACE: [AtomicU8; PLACE_MAX] = [const { AtomicU8::new(0) }; PLACE_MAX];
static PLACE_LEN: AtomicUsize = AtomicUsize::new(0);

/// Names what is being evaluated (`main.tf:12 (local.big)`), for the
/// message of a guard that stops the review. Escaped here; kept in a
/// fixed buffer, so the allocator's guard can read it without allocating.
pub fn set_place(place: &str) {
    let p = crate::text::escape(place, PLACE_MAX - 4);
    let b = p.as_bytes();
    let n = b.len().min(PLACE_MAX);
    PLACE_LEN.store(0, Ordering::Relaxed);
    for (slot, byte) in PLACE.iter().zip(&b[..n]) {
        slot.store(*byte, Ordering::Relaxed);
    }
    PLACE_LEN.store(n, Ordering::Relaxed);
}

fn place_bytes(buf: &mut [u8; PLACE_MAX]) -> usize {
    let n = PLACE_LEN.load(Ordering::Relaxed).min(PLACE_MAX);
    for (b, slot) in buf.iter_mut().zip(PLACE.iter()).take(n) {
        *b = slot.load(Ordering::Relaxed);
    }
    n
}

extern "C" {
    fn write(fd: i32, buf: *const u8, count: usize) -> isize;
    fn _exit(code: i32) -> !;
}

/// Writes `parts` and the place on standard error and ends the process
/// with exit code 2, allocating nothing (it runs inside the allocator).
fn stop(parts: &[&[u8]]) -> ! {
    let mut place = [0u8; PLACE_MAX];
    let n = place_bytes(&mut place);
    let place: &[u8] = if n == 0 {
        b"the configuration"
    } else {
        &place[..n]
    };
    for p in parts.iter().copied().chain([place, b"\n".as_slice()]) {
        // SAFETY: a valid buffer of `p.len()` bytes; fd 2 is standard error.
        unsafe {
            write(2, p.as_ptr(), p.len());
        }
    }
    // SAFETY: ends the process at once; nothing is left to unwind.
    unsafe { _exit(2) }
}

/// The memory a review may hold, MiB (not a flag: the review of any
/// input stays under a few hundred MB).
pub const MEMORY_BUDGET_MIB: u64 = 256;

const MEMORY_MESSAGE: &str = "review: the memory budget of the review (256 MiB) ran out: the configuration builds values too large to review (a for expression over a large collection, values doubled in locals); simplify it or review its plan; while evaluating ";

static LIVE: AtomicUsize = AtomicUsize::new(0);
static LIMIT: AtomicUsize = AtomicUsize::new(0);

/// The allocator [`Counting`] counts for: mimalloc, built without
/// transparent huge pages. HCL mode at 10,000 resources spent about a third
/// of its time in glibc's malloc and free (perf, on the configuration
/// bench/review_bench.sh generates); huge pages made first touches of fresh
/// memory cost more than they saved.
static INNER: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The binary's allocator: [`INNER`], counting the bytes held, and
/// stopping the review (exit 2) when [`guard_memory`] set a limit that an
/// allocation would cross.
pub struct Counting;

impl Counting {
    fn check(size: usize) {
        let limit = LIMIT.load(Ordering::Relaxed);
        if limit != 0 && LIVE.load(Ordering::Relaxed).saturating_add(size) > limit {
            LIMIT.store(0, Ordering::Relaxed);
            stop(&[MEMORY_MESSAGE.as_bytes()]);
        }
    }
}

// SAFETY: every call goes to `INNER` with the same arguments; only the
// counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::check(layout.size());
        let p = INNER.alloc(layout);
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::check(layout.size());
        let p = INNER.alloc_zeroed(layout);
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        INNER.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            Self::check(new_size - layout.size());
        }
        let p = INNER.realloc(ptr, layout, new_size);
        if !p.is_null() {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

/// Bytes held now (0 unless the binary uses [`Counting`]).
pub fn held() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Stops the review (exit 2) when it would hold more than `bytes` more
/// than it holds now; effective only in a binary that uses [`Counting`].
pub fn guard_memory(bytes: u64) {
    let limit = held().saturating_add(bytes as usize);
    LIMIT.store(limit, Ordering::Relaxed);
}

/// Lifts the memory guard (the review's evaluation is over).
pub fn release_memory() {
    LIMIT.store(0, Ordering::Relaxed);
}

/// Ends the review (exit 2, naming the place) if it is still running
/// when the time budget runs out; dropping it stops the watch.
pub struct Watchdog {
    done: Option<std::sync::mpsc::Sender<()>>,
}

impl Watchdog {
    pub fn start(seconds: u64) -> Watchdog {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("review-watchdog".into())
            .spawn(move || {
                if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    rx.recv_timeout(Duration::from_secs(seconds))
                {
                    let msg = format!(
                        "review: the time budget of the review (--max-seconds {seconds}) ran out while evaluating "
                    );
                    stop(&[msg.as_bytes()]);
                }
            });
        Watchdog {
            done: spawned.ok().map(|_| tx),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_size_stops_counting_past_the_limit() {
        let v = hcl::Value::Array(vec![hcl::Value::String("x".repeat(1000)); 1000]);
        assert!(value_size(&v, 10_000) > 10_000);
        assert!(value_size(&v, 10_000) < 20_000);
        assert_eq!(value_size(&hcl::Value::String("abc".into()), 1 << 20), 11);
    }

    #[test]
    fn the_memory_message_names_the_budget() {
        assert!(MEMORY_MESSAGE.contains(&format!("({MEMORY_BUDGET_MIB} MiB)")));
    }
}
