//! stories260K against the reference outputs of llama2.c's run.c.

use scratchpad::STRATEGY_NAMES;
use scratchpad_cpu::Isa;
use scratchpad_model::{BOS, Sampler, Tokenizer, argmax, generate};

use crate::support::{data, in_pool, reference_logits, reference_tokens, stories, transformer};

fn assert_close(what: &str, got: &[f32], expected: &[f32]) {
    assert_eq!(got.len(), expected.len());
    let (idx, err) = got
        .iter()
        .zip(expected)
        .map(|(a, b)| (a - b).abs())
        .enumerate()
        .fold(
            (0, 0.0f32),
            |best, (i, e)| if e > best.1 { (i, e) } else { best },
        );
    assert!(
        err <= 1e-4,
        "{what}: logit {idx} is off by {err:.2e} ({} vs {})",
        got[idx],
        expected[idx]
    );
}

#[test]
fn greedy_decoding_reproduces_tokens_and_logits() {
    let (model, tokens, logits) = (stories(), reference_tokens(), reference_logits());
    assert_eq!(tokens.len(), 513);
    let vocab = model.config().vocab_size;
    for threads in [1, 2] {
        in_pool(threads, || {
            let mut t = transformer(&model, "planned");
            let mut token = BOS;
            for pos in 0..512 {
                let out = t.forward(token, pos).unwrap();
                assert_close(
                    &format!("position {pos}, {threads} threads"),
                    out,
                    &logits[pos * vocab..(pos + 1) * vocab],
                );
                token = argmax(out);
                assert_eq!(token, tokens[pos + 1], "greedy token at position {pos}");
            }
        });
    }
}

#[test]
fn prefill_in_blocks_matches_decoding() {
    let (model, tokens, logits) = (stories(), reference_tokens(), reference_logits());
    let vocab = model.config().vocab_size;
    for threads in [1, 2] {
        in_pool(threads, || {
            let mut t = transformer(&model, "best-fit");
            let mut pos = 0;
            // Blocks of awkward sizes across the whole context.
            for block in [1, 7, 64, 100, 3, 200, 65, 72] {
                let out = t.prefill(&tokens[pos..pos + block], pos).unwrap();
                let last = pos + block - 1;
                assert_close(
                    &format!("block {pos}..{} ({threads} threads)", pos + block),
                    out,
                    &logits[last * vocab..(last + 1) * vocab],
                );
                pos += block;
            }
            assert_eq!(pos, 512);
        });
    }
}

fn run_generate(prompt: Option<&str>, steps: usize) -> String {
    let model = stories();
    let tokenizer = Tokenizer::open(&data("models/tok512.bin"), model.config().vocab_size).unwrap();
    let mut t = transformer(&model, "planned");
    let tokens = tokenizer.encode(prompt.unwrap_or(""), true, false);
    t.reserve(tokens.len(), steps - 1).unwrap();
    let mut sampler = Sampler::new(model.config().vocab_size, 0.0, 0.9, 1);
    let mut out = Vec::new();
    generate(
        &mut t,
        Some(&tokenizer),
        &mut sampler,
        &tokens,
        steps,
        &mut out,
    )
    .unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn generate_prints_exactly_what_run_c_prints() {
    let expected = data("reference/stories260K_t0_n200_runc_stdout.txt");
    assert_eq!(
        run_generate(None, 200),
        std::fs::read_to_string(expected).unwrap()
    );
    let expected = data("reference/stories260K_t0_n256_prompt_runc_stdout.txt");
    assert_eq!(
        run_generate(Some("Once upon a time"), 256),
        std::fs::read_to_string(expected).unwrap()
    );
}

#[test]
fn every_strategy_and_simd_path_gives_the_same_greedy_tokens() {
    let (model, tokens) = (stories(), reference_tokens());
    let run = |pool: &str, isa: Option<Isa>| -> Vec<u32> {
        let mut t = transformer(&model, pool);
        if let Some(isa) = isa {
            t = scratchpad_model::Transformer::new(
                scratchpad_model::CpuBackend::new(
                    model.clone(),
                    scratchpad::Pool::with_strategy(
                        pool,
                        scratchpad::HostMemory,
                        &Default::default(),
                    )
                    .unwrap(),
                )
                .with_isa(isa),
            );
        }
        t.reserve(1, 199).unwrap();
        let mut token = BOS;
        (0..200)
            .map(|pos| {
                token = argmax(t.forward(token, pos).unwrap());
                token
            })
            .collect()
    };
    for pool in STRATEGY_NAMES {
        assert_eq!(run(pool, None), tokens[1..201], "strategy {pool}");
    }
    for isa in Isa::supported() {
        assert_eq!(run("arena", Some(isa)), tokens[1..201], "SIMD path {isa}");
    }
}
