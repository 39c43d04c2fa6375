//! What the tests share: every pool under test, and leases of any dtype seen
//! as bytes.

use bytemuck::Pod;
use half::{bf16, f16};
use num_complex::{Complex32, Complex64};
use scratchpad::{
    HostMemory, Lease, Phase, Pool, PoolOptions, PoolStats, STRATEGY_NAMES, Scope, ScratchError,
    SharedPool, Tag,
};

/// A pool under test: a plain pool or the mutex wrapper around one.
pub enum Target {
    Plain(Pool<HostMemory>),
    Shared(SharedPool<HostMemory>),
}

impl Target {
    pub fn name(&self) -> String {
        match self {
            Target::Plain(p) => p.strategy_name().to_owned(),
            Target::Shared(s) => format!("shared({})", s.with(|p| p.strategy_name())),
        }
    }

    pub fn strategy(&self) -> &'static str {
        match self {
            Target::Plain(p) => p.strategy_name(),
            Target::Shared(s) => s.with(|p| p.strategy_name()),
        }
    }

    pub fn scope<R>(&self, f: impl for<'s> FnOnce(&'s Scope<'s, HostMemory>) -> R) -> R {
        match self {
            Target::Plain(p) => p.scope(f),
            Target::Shared(s) => s.scope(f),
        }
    }

    pub fn step<R>(
        &self,
        phase: Phase,
        f: impl for<'s> FnOnce(&'s Scope<'s, HostMemory>) -> R,
    ) -> R {
        match self {
            Target::Plain(p) => p.step(phase, f),
            Target::Shared(s) => s.step(phase, f),
        }
    }

    pub fn stats(&self) -> PoolStats {
        match self {
            Target::Plain(p) => p.stats(),
            Target::Shared(s) => s.stats(),
        }
    }

    pub fn trim(&self) {
        match self {
            Target::Plain(p) => p.trim(),
            Target::Shared(s) => s.trim(),
        }
    }
}

/// A pool of strategy `name` with grant checking on.
pub fn pool(name: &str, options: &PoolOptions) -> Pool<HostMemory> {
    let pool = Pool::with_strategy(name, HostMemory, options).expect("known strategy");
    pool.set_verify(true);
    pool
}

/// Every strategy, plain and wrapped.
pub fn targets(options: &PoolOptions) -> Vec<Target> {
    let mut out: Vec<Target> = STRATEGY_NAMES
        .iter()
        .map(|name| Target::Plain(pool(name, options)))
        .collect();
    out.extend(
        STRATEGY_NAMES
            .iter()
            .map(|name| Target::Shared(SharedPool::new(pool(name, options)))),
    );
    out
}

/// A lease of any dtype, seen as bytes.
pub trait Bytes {
    fn bytes(&self) -> &[u8];
    fn bytes_mut(&mut self) -> &mut [u8];
}

impl<T: Pod> Bytes for Lease<'_, T, HostMemory> {
    fn bytes(&self) -> &[u8] {
        bytemuck::cast_slice(self)
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        bytemuck::cast_slice_mut(self)
    }
}

/// Number of dtypes [`acquire_any`] takes.
pub const N_DTYPES: usize = 9;

/// A lease of about `bytes` bytes of dtype number `dtype` (f32, f64, f16,
/// bf16, i32, i64, u8, Complex32, Complex64).
pub fn acquire_any<'s>(
    scope: &'s Scope<'s, HostMemory>,
    dtype: usize,
    bytes: usize,
    zeroed: bool,
    tag: Tag,
) -> Result<Box<dyn Bytes + 's>, ScratchError> {
    fn get<'s, T: Pod>(
        scope: &'s Scope<'s, HostMemory>,
        bytes: usize,
        zeroed: bool,
        tag: Tag,
    ) -> Result<Box<dyn Bytes + 's>, ScratchError> {
        let len = bytes / size_of::<T>();
        let lease = if zeroed {
            scope.acquire_zeroed::<T>(len, tag)?
        } else {
            scope.acquire::<T>(len, tag)?
        };
        assert_eq!(lease.len(), len);
        Ok(Box::new(lease))
    }
    match dtype {
        0 => get::<f32>(scope, bytes, zeroed, tag),
        1 => get::<f64>(scope, bytes, zeroed, tag),
        2 => get::<f16>(scope, bytes, zeroed, tag),
        3 => get::<bf16>(scope, bytes, zeroed, tag),
        4 => get::<i32>(scope, bytes, zeroed, tag),
        5 => get::<i64>(scope, bytes, zeroed, tag),
        6 => get::<u8>(scope, bytes, zeroed, tag),
        7 => get::<Complex32>(scope, bytes, zeroed, tag),
        _ => get::<Complex64>(scope, bytes, zeroed, tag),
    }
}

/// A lease being watched: its pattern must survive until it is released.
pub struct Held<'s> {
    pub lease: Box<dyn Bytes + 's>,
    pub pattern: u8,
}

impl<'s> Held<'s> {
    pub fn new(mut lease: Box<dyn Bytes + 's>, pattern: u8) -> Self {
        lease.bytes_mut().fill(pattern);
        Held { lease, pattern }
    }

    pub fn check(&self, who: &str) {
        let bytes = self.lease.bytes();
        if let Some(pos) = bytes.iter().position(|&b| b != self.pattern) {
            panic!(
                "{who}: a lease of {} bytes with pattern {:#04x} reads {:#04x} at byte {pos}: \
                 another lease wrote over it",
                bytes.len(),
                self.pattern,
                bytes[pos]
            );
        }
    }
}

/// Checks the invariants of an idle pool.
pub fn check_idle(who: &str, stats: &PoolStats) {
    assert_eq!(
        stats.live_bytes, 0,
        "{who}: live bytes after every scope ended"
    );
    assert_eq!(
        stats.acquires, stats.releases,
        "{who}: acquires = releases when idle"
    );
    assert_eq!(
        stats.hits + stats.misses,
        stats.acquires,
        "{who}: hits + misses = acquires"
    );
    assert!(
        stats.peak_reserved_bytes >= stats.peak_live_bytes,
        "{who}: peak reserved {} below the lower bound {}",
        stats.peak_reserved_bytes,
        stats.peak_live_bytes
    );
    assert!(
        stats.retained_bytes <= stats.reserved_bytes,
        "{who}: retained more than reserved"
    );
}
