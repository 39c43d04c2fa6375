//! [`SharedPool`]: any strategy made shareable between threads by a lock
//! held for a whole scope.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::{Memory, Phase, Pool, PoolStats, Scope};

/// A [`Pool`] behind a lock. A scope holds the lock from its start to its
/// end, so one thread's scope can never recycle another's leases; threads
/// that each need scratch at the same time are better served by a pool each.
///
/// The lock is re-entrant for the thread that holds it: [`SharedPool::stats`],
/// [`SharedPool::trim`], [`SharedPool::with`] and a nested
/// [`SharedPool::scope`] called from inside a scope on the same thread run
/// at once (a nested scope nests in the open one), never waiting for
/// themselves.
pub struct SharedPool<M: Memory> {
    pool: Pool<M>,
    lock: Mutex<()>,
    /// [`thread_token`] of the thread holding `lock`; 0 when none does.
    owner: AtomicUsize,
}

// SAFETY: `pool` is only reached through `SharedPool::enter`, which either
// takes `lock` or finds that the calling thread already holds it; so at any
// time one thread at most uses the pool, and the pool itself may move
// between threads (`Pool<M>: Send`).
unsafe impl<M: Memory> Sync for SharedPool<M> where Pool<M>: Send {}

/// A number unique to the calling thread while it lives (never 0): the
/// address of a thread-local.
fn thread_token() -> usize {
    thread_local!(static TOKEN: u8 = const { 0 });
    TOKEN.with(|t| t as *const u8 as usize)
}

/// The lock held by this thread, released (owner first) when dropped.
struct Held<'a> {
    _lock: MutexGuard<'a, ()>,
    owner: &'a AtomicUsize,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.owner.store(0, Ordering::Release);
    }
}

impl<M: Memory> SharedPool<M> {
    /// Wraps `pool`.
    pub fn new(pool: Pool<M>) -> Self {
        SharedPool {
            pool,
            lock: Mutex::new(()),
            owner: AtomicUsize::new(0),
        }
    }

    /// The pool, with the lock taken unless this thread holds it already
    /// (then `None` is the guard and the outer holder keeps it).
    fn enter(&self) -> (Option<Held<'_>>, &Pool<M>) {
        let me = thread_token();
        if self.owner.load(Ordering::Acquire) == me {
            return (None, &self.pool);
        }
        // A panic inside a scope unwinds through the scope's guard, which
        // releases its leases, so the pool is consistent even when poisoned.
        let lock = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.owner.store(me, Ordering::Release);
        let held = Held {
            _lock: lock,
            owner: &self.owner,
        };
        (Some(held), &self.pool)
    }

    /// Runs `f` in a scope, holding the lock until it ends.
    pub fn scope<R>(&self, f: impl for<'s> FnOnce(&'s Scope<'s, M>) -> R) -> R {
        let (_held, pool) = self.enter();
        pool.scope(f)
    }

    /// Runs `f` as one step of `phase`, holding the lock until it ends.
    pub fn step<R>(&self, phase: Phase, f: impl for<'s> FnOnce(&'s Scope<'s, M>) -> R) -> R {
        let (_held, pool) = self.enter();
        pool.step(phase, f)
    }

    /// Runs `f` with the pool itself, under the lock.
    pub fn with<R>(&self, f: impl FnOnce(&Pool<M>) -> R) -> R {
        let (_held, pool) = self.enter();
        f(pool)
    }

    /// The pool's statistics now.
    pub fn stats(&self) -> PoolStats {
        let (_held, pool) = self.enter();
        pool.stats()
    }

    /// Returns idle memory to the backing.
    pub fn trim(&self) {
        let (_held, pool) = self.enter();
        pool.trim();
    }

    /// The pool back.
    pub fn into_inner(self) -> Pool<M> {
        self.pool
    }
}
