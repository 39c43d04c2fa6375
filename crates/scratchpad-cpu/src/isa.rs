//! [`Isa`]: which SIMD path a kernel runs, detected at run time (never
//! `-C target-cpu=native`) and forceable per call or by environment.

use std::fmt;
use std::sync::OnceLock;

/// The environment variable that forces a SIMD path: `avx512`, `avx2` or
/// `portable`. A path the CPU lacks falls back to the best it has.
pub const SIMD_ENV: &str = "SCRATCHPAD_SIMD";

/// An instruction-set path of the SIMD kernels (gemv, gemm, read bandwidth).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Isa {
    /// Plain Rust, vectorised by the compiler for the baseline target.
    Portable,
    /// AVX2 with FMA, 256-bit.
    Avx2,
    /// AVX-512F, 512-bit.
    Avx512,
}

impl Isa {
    /// Every path, in order of preference (last is best).
    pub const ALL: [Isa; 3] = [Isa::Portable, Isa::Avx2, Isa::Avx512];

    /// Whether this CPU can run the path.
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The paths this CPU supports.
    pub fn supported() -> impl Iterator<Item = Isa> {
        Isa::ALL.into_iter().filter(|isa| isa.is_supported())
    }

    /// The best supported path, or the one `SCRATCHPAD_SIMD` names when this
    /// CPU supports it. Detected once per process.
    pub fn detect() -> Isa {
        static DETECTED: OnceLock<Isa> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            let best = Isa::supported().last().unwrap_or(Isa::Portable);
            match std::env::var(SIMD_ENV).ok().and_then(|v| Isa::parse(&v)) {
                Some(forced) if forced.is_supported() => forced,
                _ => best,
            }
        })
    }

    /// The path `SCRATCHPAD_SIMD` forces: `None` when it is unset or empty,
    /// an error naming the accepted values when it names no path, or a path
    /// this CPU does not support. ([`Isa::detect`] ignores a bad value and
    /// detects; a program checks this once at start-up to say so.)
    pub fn from_env() -> Result<Option<Isa>, String> {
        let Ok(value) = std::env::var(SIMD_ENV) else {
            return Ok(None);
        };
        if value.trim().is_empty() {
            return Ok(None);
        }
        let supported: Vec<String> = Isa::supported().map(|i| i.to_string()).collect();
        match Isa::parse(&value) {
            None => Err(format!(
                "{SIMD_ENV}={value:?} names no SIMD path: use avx512, avx2 or portable"
            )),
            Some(isa) if !isa.is_supported() => Err(format!(
                "{SIMD_ENV}={value:?}: this CPU does not support {isa} (it supports {})",
                supported.join(", ")
            )),
            Some(isa) => Ok(Some(isa)),
        }
    }

    /// The path named `name` (`avx512`, `avx2`, `portable`).
    pub fn parse(name: &str) -> Option<Isa> {
        match name.trim().to_ascii_lowercase().as_str() {
            "avx512" | "avx512f" => Some(Isa::Avx512),
            "avx2" | "avx2+fma" => Some(Isa::Avx2),
            "portable" | "scalar" => Some(Isa::Portable),
            _ => None,
        }
    }

    /// Panics unless the CPU supports the path: the SIMD kernels' contract.
    pub(crate) fn assert_supported(self) {
        assert!(
            self.is_supported(),
            "SIMD path {self} is not supported by this CPU"
        );
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        })
    }
}
