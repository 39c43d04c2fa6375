//! [`SharedPool`]: any strategy made shareable between threads by a mutex
//! held for a whole scope.

use std::sync::{Mutex, MutexGuard};

use crate::{Memory, Phase, Pool, PoolStats, Scope};

/// A [`Pool`] behind a mutex. A scope holds the lock from its start to its
/// end, so one thread's scope can never recycle another's leases; threads
/// that each need scratch at the same time are better served by a pool each.
///
/// Nested scopes go through the [`Scope`] (`s.scope(..)`); calling
/// [`SharedPool::scope`] again from inside a scope on the same thread would
/// wait for itself.
pub struct SharedPool<M: Memory> {
    inner: Mutex<Pool<M>>,
}

impl<M: Memory> SharedPool<M> {
    /// Wraps `pool`.
    pub fn new(pool: Pool<M>) -> Self {
        SharedPool {
            inner: Mutex::new(pool),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pool<M>> {
        // A panic inside a scope unwinds through the scope's guard, which
        // releases its leases, so the pool is consistent even when poisoned.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` in a scope, holding the lock until it ends.
    pub fn scope<R>(&self, f: impl for<'s> FnOnce(&'s Scope<'s, M>) -> R) -> R {
        self.lock().scope(f)
    }

    /// Runs `f` as one step of `phase`, holding the lock until it ends.
    pub fn step<R>(&self, phase: Phase, f: impl for<'s> FnOnce(&'s Scope<'s, M>) -> R) -> R {
        self.lock().step(phase, f)
    }

    /// Runs `f` with the pool itself, under the lock.
    pub fn with<R>(&self, f: impl FnOnce(&Pool<M>) -> R) -> R {
        f(&self.lock())
    }

    /// The pool's statistics now.
    pub fn stats(&self) -> PoolStats {
        self.lock().stats()
    }

    /// Returns idle memory to the backing.
    pub fn trim(&self) {
        self.lock().trim();
    }

    /// The pool back.
    pub fn into_inner(self) -> Pool<M> {
        self.inner.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}
