//! The generation loop of llama2.c's `run.c`, printing exactly what it
//! prints: the prompt's pieces as they are consumed, then sampled pieces,
//! stopping at `steps` positions or a sampled BOS. The prompt runs as one
//! prefill block.

use std::io::Write;
use std::time::Instant;

use crate::tokenizer::{BOS, printable};
use crate::{Backend, ModelError, Sampler, Tokenizer, Transformer};

/// What a generation produced.
#[derive(Clone, Debug, Default)]
pub struct Generation {
    /// Every token after the first: the prompt's, then the sampled ones.
    pub tokens: Vec<u32>,
    /// Positions run (`pos` at the end, as run.c counts).
    pub positions: usize,
    /// Tokens per second from the second token on, as run.c reports.
    pub tokens_per_second: Option<f64>,
    /// Whether the model sampled BOS before `steps` positions ran (run.c
    /// stops there, and so does this).
    pub stopped_at_bos: bool,
}

/// Generates from `prompt` (with BOS first) for `steps` positions, writing
/// pieces to `out` (or token ids, separated by spaces, without a
/// tokenizer), then a newline.
pub fn generate<B: Backend>(
    model: &mut Transformer<B>,
    tokenizer: Option<&Tokenizer>,
    sampler: &mut Sampler,
    prompt: &[u32],
    steps: usize,
    out: &mut dyn Write,
) -> Result<Generation, ModelError> {
    let io = |source| ModelError::Io {
        path: "<stdout>".into(),
        source,
    };
    let seq_len = model.config().seq_len;
    if prompt.is_empty() {
        return Err(ModelError::InvalidOption {
            option: "prompt",
            reason: "it must hold at least BOS".into(),
        });
    }
    if prompt.len() > seq_len {
        return Err(ModelError::PromptTooLong {
            tokens: prompt.len(),
            seq_len,
        });
    }
    if steps > seq_len {
        return Err(ModelError::BeyondContext {
            what: "steps",
            value: steps,
            seq_len,
        });
    }
    let mut generation = Generation::default();
    let emit = |prev: u32, next: u32, out: &mut dyn Write| -> Result<(), ModelError> {
        match tokenizer {
            Some(t) => out.write_all(printable(t.decode(prev, next))).map_err(io)?,
            None => write!(out, "{next} ").map_err(io)?,
        }
        out.flush().map_err(io)
    };
    let mut token = prompt[0];
    let mut pos = 0;
    let mut start = None;
    // The prompt: its pieces are printed as run.c consumes them, and its
    // logits come from one prefill block.
    let mut logits_ready = false;
    if prompt.len() > 1 && steps >= prompt.len() {
        model.prefill(prompt, 0)?;
        logits_ready = true;
    }
    while pos < steps {
        let next = if pos + 1 < prompt.len() {
            prompt[pos + 1]
        } else {
            let logits = if logits_ready && pos + 1 == prompt.len() {
                model.backend().logits()
            } else {
                model.forward(token, pos)?
            };
            sampler
                .sample(logits)
                .ok_or(ModelError::NonFiniteLogits { position: pos })?
        };
        pos += 1;
        if next == BOS {
            generation.stopped_at_bos = true;
            break;
        }
        emit(token, next, out)?;
        generation.tokens.push(next);
        token = next;
        start.get_or_insert_with(Instant::now);
    }
    writeln!(out).map_err(io)?;
    generation.positions = pos;
    if pos > 1 {
        let secs = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
        generation.tokens_per_second = (secs > 0.0).then(|| (pos - 1) as f64 / secs);
    }
    Ok(generation)
}
