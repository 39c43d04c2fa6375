//! Host kernels of the scratchpad runtime. Every kernel takes the execution
//! context and leases each temporary from `ctx.scratch`, tagged with its
//! call site; none touches the heap. Weights are f32, row-major
//! `(out, in)` as in llama2.c checkpoints.
//!
//! SIMD paths (AVX-512F, AVX2 + FMA, portable) are chosen at run time
//! ([`Isa::detect`], `SCRATCHPAD_SIMD`), never by `-C target-cpu=native`,
//! and can be forced per call. Parallel kernels use rayon's join-based
//! iterators in the caller's pool: run a whole generation loop inside one
//! `ThreadPool::install` and they allocate nothing.

mod bandwidth;
mod gemm;
mod gemv;
mod isa;
mod microkernel;
mod packing;

pub use bandwidth::{CEILING_BYTES, ReadBandwidth, read_bandwidth, sum};
pub use gemm::{Gemm, GemmScratch, gemm, gemm_scratch};
pub use gemv::{Gemv, gemv};
pub use isa::{Isa, SIMD_ENV};
