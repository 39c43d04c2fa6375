//! The six strategies, one file each, and the registry that builds one by
//! name.

mod arena;
mod best_fit;
mod noop;
mod planned;
mod size_classed;
mod workspace;

pub use arena::Arena;
pub use best_fit::BestFit;
pub use noop::Noop;
pub use planned::Planned;
pub use size_classed::SizeClassed;
pub use workspace::Workspace;

use crate::{Memory, ScratchError, ScratchPool};

/// Every strategy's name, as [`create_strategy`] and the CLI take them.
pub const STRATEGY_NAMES: [&str; 6] = [
    "noop",
    "size-classed",
    "best-fit",
    "arena",
    "planned",
    "workspace",
];

/// The environment variable that sets [`PoolOptions::max_retained_bytes`]
/// (read by [`PoolOptions::from_env`]).
pub const MAX_RETAINED_ENV: &str = "SCRATCHPAD_MAX_RETAINED_BYTES";

/// Tunables of the strategies; each strategy reads the ones that concern it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolOptions {
    /// `best-fit` (and `planned`'s fallback): the most idle bytes retained;
    /// beyond it the smallest idle buffers are freed. Default 100 MiB.
    pub max_retained_bytes: usize,
    /// `size-classed`: the most idle buffers retained per size class, at
    /// most 4096. Default 8.
    pub per_class_cap: usize,
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
    if options.per_class_cap > size_classed::MAX_PER_CLASS_CAP {
        return Err(ScratchError::InvalidOption {
            option: "per_class_cap",
            value: options.per_class_cap.to_string(),
            reason: "at most 4096 idle buffers per class are kept",
        });
    }
    Ok(match name {
        "noop" => Box::new(Noop::new(memory, options)),
        "size-classed" => Box::new(SizeClassed::new(memory, options)),
        "best-fit" => Box::new(BestFit::new(memory, options)),
        "arena" => Box::new(Arena::new(memory, options)),
        "planned" => Box::new(Planned::new(memory, options)),
        "workspace" => Box::new(Workspace::new(memory, options)),
        _ => {
            return Err(ScratchError::UnknownStrategy {
                name: name.to_owned(),
            });
        }
    })
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
