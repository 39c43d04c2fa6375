//! A forward pass in a dozen lines: the real stories260K model shipped in
//! `testdata/`, a planned pool, the prompt as one prefill block, then
//! greedy decode steps, printed as text.
//!
//! `cargo run --release -p scratchpad-examples --example forward_pass`

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use scratchpad::{HostMemory, Pool, PoolOptions};
use scratchpad_model::{BOS, Checkpoint, CpuBackend, Tokenizer, Transformer, argmax, printable};

fn main() -> anyhow::Result<()> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/models");
    let model = Arc::new(Checkpoint::open(&data.join("stories260K.bin"))?);
    let tokenizer = Tokenizer::open(&data.join("tok512.bin"), model.config().vocab_size)?;
    let pool = Pool::with_strategy("planned", HostMemory, &PoolOptions::default())?;
    let mut t = Transformer::new(CpuBackend::new(model, pool));
    let prompt = tokenizer.encode("Once upon a time, a little fox", true, false);
    let steps = 96;
    t.reserve(prompt.len(), steps)?;
    let mut out = std::io::stdout().lock();
    for w in prompt.windows(2) {
        out.write_all(printable(tokenizer.decode(w[0], w[1])))?;
    }
    let (mut prev, mut token) = (prompt[prompt.len() - 1], argmax(t.prefill(&prompt, 0)?));
    for pos in prompt.len()..steps {
        if token == BOS {
            break; // the model ends its story
        }
        out.write_all(printable(tokenizer.decode(prev, token)))?;
        (prev, token) = (token, argmax(t.forward(token, pos)?));
    }
    writeln!(out)?;
    Ok(())
}
