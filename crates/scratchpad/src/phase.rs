//! Phases of a forward pass, the unit by which plans and lower bounds are kept.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The two phases of autoregressive inference. Steps of different phases have
/// different shapes (a block of prompt tokens vs. one token), so the planned
/// strategy keeps one plan per phase and stats keep one lower bound per phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// A block of prompt tokens through the matrix-matrix path.
    Prefill,
    /// One token through the matrix-vector path.
    Decode,
}

impl Phase {
    /// Both phases, in index order.
    pub const ALL: [Phase; 2] = [Phase::Prefill, Phase::Decode];

    /// A dense index (0 for prefill, 1 for decode) for per-phase arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The lowercase name used in traces and reports.
    pub const fn name(self) -> &'static str {
        match self {
            Phase::Prefill => "prefill",
            Phase::Decode => "decode",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
