//! [`Sampler`]: the next token from logits, as llama2.c's `run.c` samples:
//! argmax at temperature 0 (the first maximum), otherwise softmax at the
//! temperature and a draw from the whole distribution or its top-p nucleus,
//! reproducible for a seed. Its working buffers are allocated once.
//!
//! Sampling never panics: when the top-p set comes out empty (every
//! probability below the cutoff, or not a number), the most probable finite
//! token is taken; when no probability is finite (a temperature so small
//! that the logits overflow), the largest finite logit; when no logit is
//! finite either, [`Sampler::sample`] says so with `None`.

use scratchpad_cpu::softmax;

/// A seeded sampler over a fixed vocabulary.
pub struct Sampler {
    temperature: f32,
    top_p: f32,
    state: u64,
    probs: Vec<f32>,
    candidates: Vec<(f32, u32)>,
}

impl Sampler {
    /// A sampler for `vocab_size` tokens. `seed` 0 becomes 1 (xorshift's
    /// fixed point draws nothing).
    pub fn new(vocab_size: usize, temperature: f32, top_p: f32, seed: u64) -> Sampler {
        Sampler {
            temperature,
            top_p,
            state: seed.max(1),
            probs: vec![0.0; vocab_size],
            candidates: Vec::with_capacity(vocab_size),
        }
    }

    fn random_u32(&mut self) -> u32 {
        let s = &mut self.state;
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }

    fn random_f32(&mut self) -> f32 {
        (self.random_u32() >> 8) as f32 / 16_777_216.0
    }

    /// The next token, or `None` when no logit is finite. Allocation-free.
    ///
    /// # Panics
    ///
    /// When `logits` is not the vocabulary's length.
    pub fn sample(&mut self, logits: &[f32]) -> Option<u32> {
        assert_eq!(
            logits.len(),
            self.probs.len(),
            "sampler: logits must cover the vocabulary"
        );
        if self.temperature == 0.0 {
            return argmax_finite(logits);
        }
        for (p, &l) in self.probs.iter_mut().zip(logits) {
            *p = l / self.temperature;
        }
        softmax(&mut self.probs);
        if !self.probs.iter().any(|p| p.is_finite()) {
            // The temperature's limit: greedy on what is finite.
            return argmax_finite(logits);
        }
        let coin = self.random_f32();
        if self.top_p <= 0.0 || self.top_p >= 1.0 {
            sample_mult(&self.probs, coin).or_else(|| argmax_finite(&self.probs))
        } else {
            self.sample_top_p(coin)
        }
    }

    fn sample_top_p(&mut self, coin: f32) -> Option<u32> {
        let n = self.probs.len();
        let cutoff = (1.0 - self.top_p) / (n - 1).max(1) as f32;
        self.candidates.clear();
        self.candidates.extend(
            self.probs
                .iter()
                .enumerate()
                .filter(|&(_, &p)| p >= cutoff)
                .map(|(i, &p)| (p, i as u32)),
        );
        if self.candidates.is_empty() {
            return argmax_finite(&self.probs);
        }
        self.candidates.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        let mut cumulative = 0.0f32;
        let mut last = self.candidates.len().saturating_sub(1);
        for (i, &(p, _)) in self.candidates.iter().enumerate() {
            cumulative += p;
            if cumulative > self.top_p {
                last = i;
                break;
            }
        }
        let r = coin * cumulative;
        let mut cdf = 0.0f32;
        for &(p, id) in &self.candidates[..=last] {
            cdf += p;
            if r < cdf {
                return Some(id);
            }
        }
        Some(self.candidates[last].1)
    }
}

/// The index of the first maximum among the finite values; `None` when
/// none is finite.
pub fn argmax_finite(values: &[f32]) -> Option<u32> {
    let mut best: Option<usize> = None;
    for (i, &v) in values.iter().enumerate() {
        if v.is_finite() && best.is_none_or(|b| v > values[b]) {
            best = Some(i);
        }
    }
    best.map(|b| b as u32)
}

/// The index of the first maximum.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// A draw from the whole distribution; `None` when the cumulative sum never
/// passes the coin (probabilities that are not numbers).
fn sample_mult(probs: &[f32], coin: f32) -> Option<u32> {
    let mut cdf = 0.0f32;
    for (i, &p) in probs.iter().enumerate() {
        cdf += p;
        if coin < cdf {
            return Some(i as u32);
        }
    }
    // Rounding can leave the sum just below the coin: the last finite one.
    probs
        .iter()
        .rposition(|p| p.is_finite() && *p > 0.0)
        .map(|i| i as u32)
}
