//! The synthetic model: the recipe's exact bytes, and a forward pass.

use std::sync::Arc;

use scratchpad::STRATEGY_NAMES;
use scratchpad_model::{BOS, Checkpoint, ModelError, argmax, synthetic};
use sha2::{Digest, Sha256};

use crate::support::transformer;

#[test]
fn synth_15m_has_the_published_hash() {
    let bytes = synthetic::file_bytes(
        &synthetic::preset("synth-15m").unwrap(),
        synthetic::DEFAULT_SEED,
    )
    .unwrap();
    assert_eq!(bytes.len(), 60_816_028);
    let digest: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        digest,
        "c53a25692cc4d1f0c61189e65b8ca2158d5c8afc264973504dffdf7baaa5730e"
    );
    let loaded = Checkpoint::from_bytes(&bytes, "synth-15m").unwrap();
    assert_eq!(loaded.config(), &synthetic::preset("synth-15m").unwrap());
}

#[test]
fn presets_and_seeds_are_checked() {
    assert!(matches!(
        synthetic::preset("synth-7b"),
        Err(ModelError::UnknownPreset { .. })
    ));
    let config = synthetic::preset("synth-260k").unwrap();
    assert!(matches!(
        synthetic::floats(&config, 0),
        Err(ModelError::ZeroSeed)
    ));
    assert_ne!(
        synthetic::floats(&config, 2).unwrap(),
        synthetic::floats(&config, 3).unwrap()
    );
}

#[test]
fn every_strategy_gives_the_same_greedy_tokens_on_synth_260k() {
    let model = Arc::new(synthetic::checkpoint("synth-260k", synthetic::DEFAULT_SEED).unwrap());
    let run = |pool: &str| -> Vec<u32> {
        let mut t = transformer(&model, pool);
        t.reserve(16, 99).unwrap();
        let prompt: Vec<u32> = (0..16).map(|i| (i * 37 % 500) as u32 + 3).collect();
        let mut token = argmax(t.prefill(&prompt, 0).unwrap());
        let mut out = vec![token];
        for pos in 16..100 {
            token = argmax(t.forward(token, pos).unwrap());
            out.push(token);
        }
        out
    };
    let expected = run("noop");
    assert!(
        expected.iter().any(|&t| t != expected[0]),
        "the tokens vary"
    );
    for pool in STRATEGY_NAMES {
        assert_eq!(run(pool), expected, "strategy {pool}");
    }
    let mut t = transformer(&model, "planned");
    assert!(matches!(
        t.forward(BOS, 512),
        Err(ModelError::BeyondContext { .. })
    ));
    assert!(matches!(
        t.forward(512, 0),
        Err(ModelError::InvalidToken { token: 512, .. })
    ));
    assert!(matches!(
        t.reserve(513, 10),
        Err(ModelError::PromptTooLong { .. })
    ));
}
