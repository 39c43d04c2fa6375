//! Host kernels of the scratchpad runtime. Every kernel takes the execution
//! context (where it needs temporaries) and leases each from
//! `ctx.scratch`, tagged with its call site; none touches the heap. Weights
//! are f32, row-major `(out, in)` as in llama2.c checkpoints.
//!
//! SIMD paths (AVX-512F, AVX2 + FMA, portable) are chosen at run time
//! ([`Isa::detect`], `SCRATCHPAD_SIMD`), never by `-C target-cpu=native`,
//! and can be forced per call. Parallel kernels split their work on the
//! [`Team`] installed on the calling thread (the decode step's kernels), else
//! with rayon's join-based iterators in the caller's pool: run a whole
//! generation loop inside one `ThreadPool::install` (and `Team::install`)
//! and they allocate nothing.

mod activation;
mod attention;
mod bandwidth;
mod embedding;
mod gemm;
mod gemv;
mod isa;
mod kv_cache;
mod microkernel;
mod norm;
mod packing;
mod prefetch;
mod residual;
mod rope;
mod softmax;
mod team;

pub use activation::swiglu;
pub use attention::{Attention, attention, attention_scratch};
pub use bandwidth::{CEILING_BYTES, ReadBandwidth, read_bandwidth, sum, sum_prefetched};
pub use embedding::embed;
pub use gemm::{Gemm, gemm, gemm_scratch};
pub use gemv::{Gemv, gemv, gemv_many, gemv_scratch, gemv_swiglu};
pub use isa::{Isa, SIMD_ENV};
pub use kv_cache::KvCache;
pub use norm::{RMS_NORM_EPS, rms_norm};
pub use residual::add_residual;
pub use rope::{Rope, apply_rope, rope, rope_rotation, rope_scratch, rope_table, rope_table_len};
pub use softmax::softmax;
pub use team::{Team, parts, run_parts};
