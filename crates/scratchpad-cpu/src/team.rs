//! [`Team`]: helper threads that wait for work by spinning, for the decode
//! step's many short parallel kernels.
//!
//! A decode token of a small model is some forty matrix-vector products of
//! tens of microseconds each. In a rayon pool each one is a fork-join whose
//! idle worker yields to the kernel between jobs (`sched_yield`) and then
//! sleeps; on a two-vCPU VM that cost a tenth of the token's time at two
//! threads. A team's helpers instead spin on an epoch counter, so handing
//! them a job is a store and a cache-line transfer, and go to sleep after
//! 50 µs without work (between tokens of a slow sampler, or for the
//! prefill, which runs in the rayon pool).
//!
//! The kernels ask [`parts`] how many parts to split a job into and run it
//! with [`run_parts`]: on a thread inside [`Team::install`], on the team
//! (part 0 on the calling thread); elsewhere, in the caller's rayon pool.
//! Handing out a job allocates nothing.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use rayon::prelude::*;

/// How long a helper without work spins before it sleeps. A helper spinning
/// holds a core from the rayon workers: with 1 ms, `compare`'s prefill
/// (rayon's gemm right after a decode token or the classifier on the team)
/// ran 10–20 % slower, alternated against the build before the team; with
/// 50 µs, as fast, and decode within noise of 1 ms.
const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(50);
/// Spins between two looks at the clock.
const SPINS_PER_CLOCK: u32 = 256;

/// A job on the caller's stack: `call(data, part)` runs one part.
struct Job {
    data: *const (),
    call: unsafe fn(*const (), usize),
}

/// What the caller and the helpers share.
struct Shared {
    /// Bumped once per job; a helper runs the job when it sees a new value.
    epoch: AtomicU64,
    /// The current job, valid while `pending > 0`.
    job: AtomicPtr<Job>,
    /// Helpers that have not finished the current job.
    pending: AtomicUsize,
    /// A helper's part panicked; its payload, for the caller to resume.
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
    panicked: AtomicBool,
    /// Per helper: asleep (or about to be), so the caller must wake it.
    sleeping: Vec<AtomicBool>,
    stop: AtomicBool,
}

/// Helper threads (one fewer than the team's size) that run the parts of
/// the kernels called inside [`Team::install`]. Dropping the team stops
/// and joins them.
///
/// Not `Sync`: one job at a time, handed out by the one thread that holds
/// the team; a job started from inside a part of another (on the caller's
/// thread) runs its parts there, one after the other.
pub struct Team {
    shared: Arc<Shared>,
    helpers: Vec<(Thread, JoinHandle<()>)>,
    /// A job is running: a nested one must not reuse the helpers.
    busy: Cell<bool>,
}

thread_local! {
    /// The team installed on this thread, if any.
    static CURRENT: Cell<Option<*const Team>> = const { Cell::new(None) };
}

impl Team {
    /// A team of `threads` (at least 1): the calling thread and
    /// `threads - 1` helpers, started now.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let n_helpers = threads.max(1) - 1;
        let shared = Arc::new(Shared {
            epoch: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            pending: AtomicUsize::new(0),
            panic: Mutex::new(None),
            panicked: AtomicBool::new(false),
            sleeping: (0..n_helpers).map(|_| AtomicBool::new(false)).collect(),
            stop: AtomicBool::new(false),
        });
        let mut helpers = Vec::with_capacity(n_helpers);
        for idx in 0..n_helpers {
            let shared = shared.clone();
            let handle = thread::Builder::new()
                .name(format!("scratchpad-team-{}", idx + 1))
                .spawn(move || helper(&shared, idx))?;
            helpers.push((handle.thread().clone(), handle));
        }
        Ok(Team {
            shared,
            helpers,
            busy: Cell::new(false),
        })
    }

    /// The team's size: its helpers and the calling thread.
    pub fn threads(&self) -> usize {
        self.helpers.len() + 1
    }

    /// Runs `f` on this thread with the team installed: the kernels it
    /// calls split their work across the team. Nests; the previous team (or
    /// none) is back when `f` returns or unwinds.
    pub fn install<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<*const Team>);
        impl Drop for Restore {
            fn drop(&mut self) {
                CURRENT.with(|c| c.set(self.0));
            }
        }
        let _restore = Restore(CURRENT.with(|c| c.replace(Some(self as *const Team))));
        f()
    }

    /// Runs `f(part)` for every part in `0..self.threads()`, part 0 on the
    /// calling thread, and returns when all have finished.
    fn run(&self, f: &(dyn Fn(usize) + Sync)) {
        unsafe fn call(data: *const (), part: usize) {
            // SAFETY: `data` is the `&&dyn Fn` made below, alive until
            // every part has finished (`run` waits for them).
            let f = unsafe { &*(data as *const &(dyn Fn(usize) + Sync)) };
            f(part);
        }
        if self.helpers.is_empty() {
            return f(0);
        }
        if self.busy.replace(true) {
            // Nested in a part of a job still running: the helpers are
            // taken, and the shared job slot with them.
            return (0..self.threads()).for_each(f);
        }
        let shared = &*self.shared;
        let job = Job {
            data: &f as *const &(dyn Fn(usize) + Sync) as *const (),
            call,
        };
        shared.pending.store(self.helpers.len(), Ordering::Relaxed);
        shared
            .job
            .store(&job as *const Job as *mut Job, Ordering::Relaxed);
        // SeqCst pairs with the helper's store to `sleeping` and its
        // re-check of the epoch: a helper going to sleep either sees this
        // job or is seen asleep below and woken.
        shared.epoch.fetch_add(1, Ordering::SeqCst);
        for (idx, (thread, _)) in self.helpers.iter().enumerate() {
            if shared.sleeping[idx].load(Ordering::SeqCst) {
                thread.unpark();
            }
        }
        // The job lives on this stack: wait for the helpers even if part 0
        // unwinds (then a helper's panic, if any, is dropped: one is
        // already unwinding).
        struct Wait<'a>(&'a Team);
        impl Drop for Wait<'_> {
            fn drop(&mut self) {
                let shared = &*self.0.shared;
                while shared.pending.load(Ordering::Acquire) != 0 {
                    std::hint::spin_loop();
                }
                self.0.busy.set(false);
                if thread::panicking() {
                    shared.panicked.store(false, Ordering::Relaxed);
                }
            }
        }
        {
            let _wait = Wait(self);
            f(0);
        }
        if shared.panicked.swap(false, Ordering::Relaxed) {
            let payload = shared.panic.lock().ok().and_then(|mut p| p.take());
            resume_unwind(payload.unwrap_or_else(|| Box::new("a team helper panicked")));
        }
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        for (thread, handle) in self.helpers.drain(..) {
            thread.unpark();
            let _ = handle.join();
        }
    }
}

/// A helper's loop: wait for a new epoch (spinning, then asleep), run part
/// `idx + 1` of its job, count itself done.
fn helper(shared: &Shared, idx: usize) {
    let mut seen = 0u64;
    loop {
        let (mut spins, mut since) = (0u32, None);
        let epoch = loop {
            let epoch = shared.epoch.load(Ordering::Acquire);
            if epoch != seen {
                break epoch;
            }
            spins = spins.wrapping_add(1);
            if spins % SPINS_PER_CLOCK != 0
                || since.get_or_insert_with(Instant::now).elapsed() < SPIN_BEFORE_SLEEP
            {
                std::hint::spin_loop();
                continue;
            }
            shared.sleeping[idx].store(true, Ordering::SeqCst);
            if shared.epoch.load(Ordering::SeqCst) == seen {
                thread::park();
            }
            shared.sleeping[idx].store(false, Ordering::SeqCst);
        };
        seen = epoch;
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let job = shared.job.load(Ordering::Relaxed);
        // SAFETY: the caller published `job` before bumping the epoch
        // (Acquire above) and keeps it alive until `pending` reaches 0.
        let result = catch_unwind(AssertUnwindSafe(|| unsafe {
            let job = &*job;
            (job.call)(job.data, idx + 1);
        }));
        if let Err(payload) = result {
            if let Ok(mut slot) = shared.panic.lock() {
                *slot = Some(payload);
            }
            shared.panicked.store(true, Ordering::Relaxed);
        }
        shared.pending.fetch_sub(1, Ordering::Release);
    }
}

/// How many parts a kernel's job should be split into on this thread: the
/// installed team's size, else the rayon pool's.
pub fn parts() -> usize {
    match CURRENT.with(Cell::get) {
        // SAFETY: `install` keeps the team borrowed while it is current.
        Some(team) => unsafe { (*team).threads() },
        None => rayon::current_num_threads(),
    }
}

/// Runs `f(part)` for every part in `0..n`, in parallel: on the installed
/// team when `n` is its size, else in the caller's rayon pool (one part on
/// the calling thread).
pub fn run_parts(n: usize, f: impl Fn(usize) + Sync) {
    if n == 1 {
        return f(0);
    }
    if let Some(team) = CURRENT.with(Cell::get) {
        // SAFETY: `install` keeps the team borrowed while it is current.
        let team = unsafe { &*team };
        if n == team.threads() {
            return team.run(&f);
        }
    }
    (0..n).into_par_iter().for_each(&f);
}

/// A slice shared by the parts of a job, each taking its own range.
pub(crate) struct Disjoint<'a, T> {
    ptr: *mut T,
    len: usize,
    _slice: std::marker::PhantomData<&'a mut [T]>,
}

// SAFETY: the parts take disjoint ranges (see `range`), so sharing the
// slice between threads is sharing `&mut` to distinct elements.
unsafe impl<T: Send> Sync for Disjoint<'_, T> {}

impl<'a, T> Disjoint<'a, T> {
    pub(crate) fn new(slice: &'a mut [T]) -> Self {
        Disjoint {
            ptr: slice.as_mut_ptr(),
            len: slice.len(),
            _slice: std::marker::PhantomData,
        }
    }

    /// The slice's length.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Elements `[first, last)` (clamped to the slice).
    ///
    /// # Safety
    ///
    /// No two ranges taken and live at once overlap.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn range(&self, first: usize, last: usize) -> &mut [T] {
        let last = last.min(self.len);
        let first = first.min(last);
        // SAFETY: in bounds (clamped), and the caller keeps ranges disjoint.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(first), last - first) }
    }
}
