//! [`Backend`]: what the generic driver ([`crate::Transformer`]) needs of a
//! model on a device, object-safe so that the device can be chosen at run
//! time ([`crate::Engine`]). [`crate::Llama`] implements it for every
//! [`crate::Device`].

use scratchpad::PoolControl;

use crate::{Config, ModelError};

/// A model on a device, ready to run steps.
pub trait Backend {
    /// The model's shape.
    fn config(&self) -> &Config;

    /// The scratch pool every temporary of a forward pass is leased from.
    fn scratch(&self) -> &dyn PoolControl;

    /// Runs `tokens` at positions `pos..pos + tokens.len()` through every
    /// layer (storing their keys and values in the cache) and leaves the
    /// last token's logits in [`Backend::logits`]. Ids outside the
    /// vocabulary and positions past the context are refused with an error
    /// before anything runs.
    fn forward_block(&mut self, tokens: &[u32], pos: usize) -> Result<(), ModelError>;

    /// The logits of the last token run, on the host.
    fn logits(&self) -> &[f32];

    /// Clears the KV cache for a new prompt.
    fn reset_cache(&mut self);
}

impl<B: Backend + ?Sized> Backend for Box<B> {
    fn config(&self) -> &Config {
        (**self).config()
    }

    fn scratch(&self) -> &dyn PoolControl {
        (**self).scratch()
    }

    fn forward_block(&mut self, tokens: &[u32], pos: usize) -> Result<(), ModelError> {
        (**self).forward_block(tokens, pos)
    }

    fn logits(&self) -> &[f32] {
        (**self).logits()
    }

    fn reset_cache(&mut self) {
        (**self).reset_cache();
    }
}
