//! [`Backend`]: what a device must do for the model. The generic driver
//! ([`crate::Transformer`]) owns steps, phases, bounds and `reserve`; a
//! backend runs blocks of tokens through the layers with its own kernels.

use scratchpad::{Memory, Pool};

use crate::{Config, ModelError};

/// A device that runs the Llama forward pass.
pub trait Backend {
    /// The memory its scratch pool draws from.
    type Memory: Memory;

    /// The model's shape.
    fn config(&self) -> &Config;

    /// The scratch pool every temporary of a forward pass is leased from.
    fn scratch(&self) -> &Pool<Self::Memory>;

    /// Runs `tokens` at positions `pos..pos + tokens.len()` through every
    /// layer (storing their keys and values in the cache) and leaves the
    /// last token's logits in [`Backend::logits`]. The caller has checked
    /// the ids and that the positions fit the context; a step is open.
    fn forward_block(&mut self, tokens: &[u32], pos: usize) -> Result<(), ModelError>;

    /// The logits of the last token run, on the host.
    fn logits(&self) -> &[f32];

    /// Clears the KV cache for a new prompt.
    fn reset_cache(&mut self);
}
