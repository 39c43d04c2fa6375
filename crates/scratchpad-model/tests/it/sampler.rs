//! The sampler: argmax at temperature 0, reproducible draws for a seed,
//! and top-p restricted to the nucleus.

use scratchpad_model::{Sampler, argmax};

fn logits(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 / 250.0)
        .collect()
}

#[test]
fn temperature_zero_takes_the_first_maximum() {
    let mut s = Sampler::new(5, 0.0, 0.9, 1);
    assert_eq!(s.sample(&[0.0, 3.0, 1.0, 3.0, 2.0]), Some(1));
    assert_eq!(argmax(&[-1.0, -1.0]), 0);
}

#[test]
fn the_same_seed_draws_the_same_tokens() {
    let draws = |seed: u64, top_p: f32| -> Vec<u32> {
        let mut s = Sampler::new(512, 0.9, top_p, seed);
        (0..200)
            .map(|i| s.sample(&logits(512, i)).unwrap())
            .collect()
    };
    for top_p in [0.9, 1.0] {
        assert_eq!(draws(42, top_p), draws(42, top_p), "top-p {top_p}");
        assert_ne!(
            draws(42, top_p),
            draws(43, top_p),
            "top-p {top_p}: other seeds differ"
        );
    }
    let spread: std::collections::HashSet<u32> = draws(7, 1.0).into_iter().collect();
    assert!(
        spread.len() > 20,
        "temperature 0.9 samples widely: {} distinct tokens",
        spread.len()
    );
}

#[test]
fn top_p_keeps_to_the_nucleus() {
    // Token 3 holds almost all the mass: a nucleus of 0.5 is token 3 alone.
    let mut l = vec![0.0f32; 100];
    l[3] = 10.0;
    let mut s = Sampler::new(100, 1.0, 0.5, 9);
    for _ in 0..500 {
        assert_eq!(s.sample(&l), Some(3));
    }
    // Two tokens share the mass evenly: top-p 0.9 draws only those two.
    let mut l = vec![-20.0f32; 100];
    l[10] = 5.0;
    l[20] = 5.0;
    let mut s = Sampler::new(100, 1.0, 0.9, 11);
    let drawn: std::collections::HashSet<u32> = (0..500).map(|_| s.sample(&l).unwrap()).collect();
    assert_eq!(drawn, [10, 20].into_iter().collect());
}

#[test]
fn an_empty_nucleus_takes_the_most_probable_token() {
    // A huge temperature flattens the distribution below top-p's cutoff.
    let l = logits(512, 3);
    let mut s = Sampler::new(512, 1e30, 0.0001, 7);
    let expected = scratchpad_model::argmax_finite(&l);
    for _ in 0..20 {
        let token = s.sample(&l).unwrap();
        assert!((token as usize) < 512);
    }
    // A tiny temperature overflows every probability: greedy.
    let mut s = Sampler::new(512, 1e-40, 0.9, 7);
    assert_eq!(s.sample(&l), expected);
    let mut s = Sampler::new(512, 1e-40, 1.0, 7);
    assert_eq!(s.sample(&l), expected);
}

#[test]
fn non_finite_logits_never_panic() {
    let mut some_nan = logits(64, 5);
    some_nan[3] = f32::NAN;
    some_nan[9] = f32::INFINITY;
    for (t, p) in [(0.0, 0.9), (0.8, 0.9), (0.8, 1.0), (1e-40, 0.5)] {
        let mut s = Sampler::new(64, t, p, 3);
        let token = s.sample(&some_nan);
        assert!(token.is_some_and(|t| t < 64), "t={t} p={p}: {token:?}");
    }
    let all_nan = vec![f32::NAN; 64];
    for (t, p) in [(0.0, 0.9), (0.8, 0.9), (0.8, 1.0), (1e-40, 0.5)] {
        let mut s = Sampler::new(64, t, p, 3);
        assert_eq!(s.sample(&all_nan), None, "t={t} p={p}");
    }
}
