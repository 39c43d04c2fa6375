//! The model crate's error type: every problem a file, a prompt or an
//! option can cause, naming what and where.

use std::path::PathBuf;

use scratchpad::ScratchError;

/// What loading a model, encoding a prompt or running a forward pass can
/// report. None of these is helped by retrying except `Scratch` with an
/// out-of-memory inside (see [`ScratchError`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A file could not be opened, read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A path that names a directory (or another non-file) where a file
    /// was expected.
    #[error("{}: {what}, not a file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is.
        what: &'static str,
    },
    /// A file whose header makes no llama2.c checkpoint at all (text, or
    /// numbers no model has).
    #[error("{}: not a llama2.c checkpoint: {reason}", path.display())]
    NotACheckpoint {
        /// The file.
        path: PathBuf,
        /// What the header holds instead.
        reason: String,
    },
    /// A checkpoint shorter than its header says.
    #[error("{}: truncated checkpoint: the header needs {expected} bytes, the file has {found}", path.display())]
    TruncatedCheckpoint {
        /// The file (or `<memory>`).
        path: PathBuf,
        /// Bytes the header implies.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// A checkpoint longer than its header says.
    #[error("{}: oversized checkpoint: the header needs {expected} bytes, the file has {found} (wrong file, or another format)", path.display())]
    OversizedCheckpoint {
        /// The file.
        path: PathBuf,
        /// Bytes the header implies.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// A header field that makes no model.
    #[error("{}: invalid checkpoint header: {field} = {value}: {reason}", path.display())]
    InvalidHeader {
        /// The file.
        path: PathBuf,
        /// The field (`dim`, `n_heads`, ...).
        field: &'static str,
        /// Its value.
        value: i64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Header sizes whose product overflows.
    #[error("{}: invalid checkpoint header: the tensor sizes overflow", path.display())]
    SizeOverflow {
        /// The file.
        path: PathBuf,
    },
    /// A tokenizer file that does not hold exactly the model's vocabulary.
    #[error("{}: {reason} (the model's vocabulary has {vocab_size} tokens; is this the tokenizer of another model?)", path.display())]
    TokenizerMismatch {
        /// The file.
        path: PathBuf,
        /// The model's vocabulary size.
        vocab_size: usize,
        /// What was found.
        reason: String,
    },
    /// A prompt that does not fit the model's context.
    #[error("the prompt is {tokens} tokens long but the model's context holds {seq_len}")]
    PromptTooLong {
        /// Tokens in the encoded prompt (with BOS).
        tokens: usize,
        /// The model's `seq_len`.
        seq_len: usize,
    },
    /// Positions past the model's context.
    #[error("{what} {value} is beyond the model's context of {seq_len} positions")]
    BeyondContext {
        /// What was asked (`steps`, `position`).
        what: &'static str,
        /// The value.
        value: usize,
        /// The model's `seq_len`.
        seq_len: usize,
    },
    /// A token id outside the vocabulary.
    #[error("token {token} is outside the vocabulary of {vocab_size}")]
    InvalidToken {
        /// The id.
        token: u32,
        /// The vocabulary size.
        vocab_size: usize,
    },
    /// The logits at a position hold no finite value to sample from (NaN
    /// or infinite weights in the checkpoint). Retrying cannot help.
    #[error(
        "the logits at position {position} hold no finite value (the checkpoint's weights give NaN or infinity); nothing can be sampled"
    )]
    NonFiniteLogits {
        /// The position whose logits were sampled.
        position: usize,
    },
    /// Running the model would hold more memory than the budget allows (a
    /// header that asks for more than the machine has). Retrying cannot
    /// help; a larger `--max-memory` or a smaller context can.
    #[error(
        "running this model needs {needed} bytes ({detail}), more than the budget of {budget} bytes (the memory available; --max-memory changes it)"
    )]
    OverBudget {
        /// Bytes the run would hold.
        needed: usize,
        /// Bytes allowed.
        budget: usize,
        /// The parts.
        detail: String,
    },
    /// A synthetic preset that does not exist.
    #[error("unknown synthetic model `{name}`; expected one of: {}", crate::synthetic::PRESET_NAMES.join(", "))]
    UnknownPreset {
        /// The name given.
        name: String,
    },
    /// A seed the synthetic generator cannot use.
    #[error(
        "seed 0 is the fixed point of xorshift64* and generates no randomness; use any other seed"
    )]
    ZeroSeed,
    /// An option value outside its range.
    #[error("invalid {option}: {reason}")]
    InvalidOption {
        /// The option.
        option: &'static str,
        /// Why.
        reason: String,
    },
    /// The scratch pool failed (out of memory, a request that never fits).
    #[error(transparent)]
    Scratch(#[from] ScratchError),
    /// The CUDA backend failed or is missing something (driver, device,
    /// NVRTC, cuBLAS).
    #[error(transparent)]
    Cuda(#[from] scratchpad_cuda::CudaError),
    /// CUDA-graph replay was asked for on a strategy whose lease addresses
    /// are not stable from one step to the next.
    #[error(
        "CUDA-graph replay needs a pool strategy whose addresses are stable after warm-up \
         ({}); `{strategy}` may hand a later step other addresses than the captured ones",
        crate::graph_strategies().collect::<Vec<_>>().join(", ")
    )]
    GraphNeedsStableAddresses {
        /// The strategy refused.
        strategy: String,
    },
}
