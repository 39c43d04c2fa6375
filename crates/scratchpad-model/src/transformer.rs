//! [`Transformer`]: the backend-independent driver of the forward pass.
//! One forward call is one step of the scratch pool (a prefill step for a
//! block, a decode step for one token), checked against the context before
//! anything runs.

use scratchpad::Phase;

use crate::{Backend, Config, ModelError};

/// A Llama model on a backend: a concrete one (`Transformer<CpuBackend>`)
/// or one chosen at run time (`Transformer<Box<dyn Backend>>`, from
/// [`crate::Engine`]).
pub struct Transformer<B: Backend = Box<dyn Backend>> {
    backend: B,
}

impl<B: Backend> Transformer<B> {
    /// Wraps a backend.
    pub fn new(backend: B) -> Self {
        Transformer { backend }
    }

    /// The model's shape.
    pub fn config(&self) -> &Config {
        self.backend.config()
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    fn step(&mut self, phase: Phase, tokens: &[u32], pos: usize) -> Result<&[f32], ModelError> {
        crate::llama::check_step(self.backend.config(), tokens, pos)?;
        if tokens.is_empty() {
            return Ok(self.backend.logits());
        }
        self.backend.scratch().begin_step_sized(phase, tokens.len());
        let result = self.backend.forward_block(tokens, pos);
        self.backend.scratch().end_step();
        result?;
        Ok(self.backend.logits())
    }

    /// Decodes one token at `pos` (a decode step); returns its logits.
    pub fn forward(&mut self, token: u32, pos: usize) -> Result<&[f32], ModelError> {
        self.step(Phase::Decode, &[token], pos)
    }

    /// Runs a block of tokens at positions `pos..` through the matrix-matrix
    /// path (a prefill step); returns the last token's logits.
    pub fn prefill(&mut self, tokens: &[u32], pos: usize) -> Result<&[f32], ModelError> {
        self.step(Phase::Prefill, tokens, pos)
    }

    /// Clears the KV cache for a new prompt.
    pub fn reset(&mut self) {
        self.backend.reset_cache();
    }

    /// Runs one prefill block of `prompt_len` tokens and one decode step at
    /// `max_pos`, then clears the cache: every pooled strategy (and
    /// `planned`'s measurement, one plan per phase) sees the largest sizes of
    /// both phases before the counted steps begin.
    pub fn reserve(&mut self, prompt_len: usize, max_pos: usize) -> Result<(), ModelError> {
        let seq_len = self.config().seq_len;
        if prompt_len > seq_len {
            return Err(ModelError::PromptTooLong {
                tokens: prompt_len,
                seq_len,
            });
        }
        if max_pos >= seq_len {
            return Err(ModelError::BeyondContext {
                what: "position",
                value: max_pos,
                seq_len,
            });
        }
        if prompt_len > 1 {
            let block = vec![crate::BOS; prompt_len];
            self.prefill(&block, 0)?;
        }
        self.forward(crate::BOS, max_pos)?;
        self.reset();
        Ok(())
    }
}
