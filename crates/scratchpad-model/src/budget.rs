//! [`RunMemory`]: what running a model will hold, computed from its header
//! with checked arithmetic before anything is allocated, and the check of
//! it against a budget (by default the memory the machine has available),
//! so a small file with a huge header is refused with the figure instead
//! of aborting on an allocation.

use crate::{Checkpoint, Config, ModelError};

/// The memory a run of a model holds, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunMemory {
    /// Weights copied into memory (0 when memory-mapped: the page cache
    /// holds them, and may drop them).
    pub weights: usize,
    /// Keys and values of every layer and position.
    pub kv_cache: usize,
    /// The residual stream and the logits.
    pub state: usize,
    /// The scratch of a prefill over the whole context: a layer's buffers
    /// and the attention scores.
    pub activations: usize,
}

impl RunMemory {
    /// The figures for `config`, or `None` when they overflow `usize`.
    pub fn of(config: &Config, weights: usize) -> Option<RunMemory> {
        let f = |n: usize| n.checked_mul(4);
        let c = config;
        let (seq, dim, kv, hidden) = (c.seq_len, c.dim, c.kv_dim(), c.hidden_dim);
        let kv_cache = f(2usize
            .checked_mul(c.n_layers)?
            .checked_mul(seq)?
            .checked_mul(kv)?)?;
        let state = f(seq.checked_mul(dim)?.checked_add(c.vocab_size)?)?;
        // xb, q, att (dim), k, v (kv_dim), hb, hb2 (hidden) per token; the
        // scores of every head over the context; the RoPE table.
        let per_token = dim
            .checked_mul(3)?
            .checked_add(kv.checked_mul(2)?)?
            .checked_add(hidden.checked_mul(2)?)?
            .checked_add(c.head_dim())?;
        let scores = c.n_heads.checked_mul(seq)?.checked_mul(seq)?;
        let activations = f(seq.checked_mul(per_token)?.checked_add(scores)?)?;
        Some(RunMemory {
            weights,
            kv_cache,
            state,
            activations,
        })
    }

    /// The figures for `model`: its weights count when they are copied.
    pub fn of_model(model: &Checkpoint) -> Option<RunMemory> {
        RunMemory::of_model_copied(model, !model.is_mapped())
    }

    /// The figures for `model` with its weights copied into memory
    /// (`copied`) or not, whichever way it is held now: the check made
    /// before [`Checkpoint::into_memory`] allocates the copy.
    pub fn of_model_copied(model: &Checkpoint, copied: bool) -> Option<RunMemory> {
        let weights = if copied {
            model.layout().total_bytes
        } else {
            0
        };
        RunMemory::of(model.config(), weights)
    }

    /// Everything together, or `None` on overflow.
    pub fn total(&self) -> Option<usize> {
        self.weights
            .checked_add(self.kv_cache)?
            .checked_add(self.state)?
            .checked_add(self.activations)
    }
}

/// The memory this machine has available now (Linux's `MemAvailable`);
/// `None` where it cannot be read.
pub fn available_memory() -> Option<usize> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// `Ok` when running `model` fits `budget` bytes (by default, with `None`,
/// the memory available now; no check where that cannot be read); an error
/// naming the figures otherwise.
pub fn check_memory(model: &Checkpoint, budget: Option<usize>) -> Result<(), ModelError> {
    check_memory_copied(model, budget, !model.is_mapped())
}

/// As [`check_memory`], counting the weights as copied into memory when
/// `copied` (before [`Checkpoint::into_memory`] makes the copy).
pub fn check_memory_copied(
    model: &Checkpoint,
    budget: Option<usize>,
    copied: bool,
) -> Result<(), ModelError> {
    let Some(budget) = budget.or_else(available_memory) else {
        return Ok(());
    };
    let memory = RunMemory::of_model_copied(model, copied);
    match memory.and_then(|m| m.total().map(|t| (m, t))) {
        Some((_, total)) if total <= budget => Ok(()),
        Some((m, total)) => Err(ModelError::OverBudget {
            needed: total,
            budget,
            detail: format!(
                "KV cache {} bytes, activations {} bytes, state {} bytes, weights held {} bytes",
                m.kv_cache, m.activations, m.state, m.weights
            ),
        }),
        None => Err(ModelError::OverBudget {
            needed: usize::MAX,
            budget,
            detail: "the sizes overflow usize".into(),
        }),
    }
}
