//! The strategies, one file each, and the registry: one line per strategy
//! (`registry!` below) gives its module, its type and, from the `INFO`
//! its file declares, its name, policy, source and whether its addresses
//! are stable after warm-up. [`STRATEGIES`], [`STRATEGY_NAMES`],
//! [`create_strategy`] and [`stable_addresses`] are made from it, so adding
//! a strategy is its file plus one line there.

mod held;
mod segments;

pub(crate) use held::Held;

use crate::{Memory, ScratchError, ScratchPool};

/// What the registry knows of a strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StrategyInfo {
    /// Its name, as [`create_strategy`] and the CLI take it.
    pub name: &'static str,
    /// The policy, in one line.
    pub policy: &'static str,
    /// The allocator or paper it follows.
    pub after: &'static str,
    /// True when, once warm, a step's leases get the same addresses as the
    /// step before (so a captured CUDA graph stays valid).
    pub stable_addresses: bool,
    /// True when it runs on host memory only (the malloc baselines).
    pub host_only: bool,
}

/// Declares each strategy's module and builds the registry from them: the
/// strategies with a type and `Type::new(memory, options)`, then those made
/// by their module's fallible `create(memory, options)` (the malloc
/// baselines, which refuse device memory).
macro_rules! registry {
    (
        $($module:ident => $ty:ident),+ ;
        $($made:ident => create),* $(,)?
    ) => {
        $(mod $module;)+
        $(pub use $module::$ty;)+
        $(mod $made;)*

        /// Every strategy, in the order reports list them.
        pub const STRATEGIES: [StrategyInfo; [$(stringify!($module)),+ $(, stringify!($made))*].len()] =
            [$($module::INFO),+ $(, $made::INFO)*];

        /// Every strategy's name, as [`create_strategy`] and the CLI take them.
        pub const STRATEGY_NAMES: [&str; STRATEGIES.len()] =
            [$($module::INFO.name),+ $(, $made::INFO.name)*];

        fn build<M: Memory>(
            name: &str,
            memory: M,
            options: &PoolOptions,
        ) -> Option<Result<Box<dyn ScratchPool<M>>, ScratchError>> {
            $(
                if name == $module::INFO.name {
                    return Some(Ok(Box::new($ty::new(memory, options))));
                }
            )+
            $(
                if name == $made::INFO.name {
                    return Some($made::create(memory, options).map(|s| Box::new(s) as Box<dyn ScratchPool<M>>));
                }
            )*
            None
        }
    };
}

registry! {
    noop => Noop,
    size_classed => SizeClassed,
    best_fit => BestFit,
    arena => Arena,
    planned => Planned,
    workspace => Workspace,
    bfc => Bfc,
    tlsf => Tlsf;
    noop_mimalloc => create,
    noop_jemalloc => create,
}

/// The registry's entry for `name`.
pub fn strategy_info(name: &str) -> Option<&'static StrategyInfo> {
    STRATEGIES.iter().find(|s| s.name == name)
}

/// The names of the strategies that run on any memory (not host-only), for
/// a device's default list.
pub fn device_strategy_names() -> impl Iterator<Item = &'static str> {
    STRATEGIES.iter().filter(|s| !s.host_only).map(|s| s.name)
}

/// Whether the strategy called `name` hands a warm step the same addresses
/// as the step before; `None` for an unknown name.
pub fn stable_addresses(name: &str) -> Option<bool> {
    strategy_info(name).map(|s| s.stable_addresses)
}

/// The environment variable that sets [`PoolOptions::max_retained_bytes`]
/// (read by [`PoolOptions::from_env`]).
pub const MAX_RETAINED_ENV: &str = "SCRATCHPAD_MAX_RETAINED_BYTES";

/// Tunables of the strategies; each strategy reads the ones that concern it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolOptions {
    /// `best-fit` (and `planned`'s fallback): the most idle bytes retained;
    /// beyond it the smallest idle buffers are freed. `bfc` and `tlsf`:
    /// beyond it wholly idle segments are freed. Default 100 MiB.
    pub max_retained_bytes: usize,
    /// `size-classed`: the most idle buffers retained per size class, at
    /// most 4096. Default 8.
    pub per_class_cap: usize,
    /// `bfc`: blocks of this size or more are never split, and serve only
    /// requests of this size or more (PyTorch's `max_split_size_mb`).
    /// Default: no limit.
    pub max_split_size: usize,
    /// Every strategy: the most bytes held from the memory at once; `None`
    /// for no limit. A request past it fails with `OutOfMemory` (or
    /// `NeverFits` when it alone is larger).
    pub reserve_limit: Option<usize>,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            max_retained_bytes: 100 << 20,
            per_class_cap: 8,
            max_split_size: usize::MAX,
            reserve_limit: None,
        }
    }
}

impl PoolOptions {
    /// The defaults, with `max_retained_bytes` taken from
    /// `SCRATCHPAD_MAX_RETAINED_BYTES` when it is set.
    pub fn from_env() -> Result<Self, ScratchError> {
        let mut options = PoolOptions::default();
        if let Ok(value) = std::env::var(MAX_RETAINED_ENV) {
            options.max_retained_bytes =
                value
                    .trim()
                    .parse()
                    .map_err(|_| ScratchError::InvalidOption {
                        option: MAX_RETAINED_ENV,
                        value: value.clone(),
                        reason: "expected a whole number of bytes",
                    })?;
        }
        Ok(options)
    }
}

/// Builds the strategy called `name` over `memory`.
pub fn create_strategy<M: Memory>(
    name: &str,
    memory: M,
    options: &PoolOptions,
) -> Result<Box<dyn ScratchPool<M>>, ScratchError> {
    check_options(options)?;
    build(name, memory, options).unwrap_or_else(|| {
        Err(ScratchError::UnknownStrategy {
            name: name.to_owned(),
        })
    })
}

/// The checks of the options every strategy's creation makes, whichever
/// reads them.
pub(crate) fn check_options(options: &PoolOptions) -> Result<(), ScratchError> {
    if options.per_class_cap > size_classed::MAX_PER_CLASS_CAP {
        return Err(ScratchError::InvalidOption {
            option: "per_class_cap",
            value: options.per_class_cap.to_string(),
            reason: "at most 4096 idle buffers per class are kept",
        });
    }
    Ok(())
}

/// `bytes` rounded up to a multiple of `granule` (a power of two), or `None`
/// on overflow.
pub(crate) fn round_up(bytes: usize, granule: usize) -> Option<usize> {
    debug_assert!(granule.is_power_of_two());
    Some(bytes.checked_add(granule - 1)? & !(granule - 1))
}

/// The error for a request whose rounded size overflows.
pub(crate) fn too_large(requested: usize) -> ScratchError {
    ScratchError::NeverFits {
        requested,
        limit: isize::MAX as usize / 2,
    }
}
