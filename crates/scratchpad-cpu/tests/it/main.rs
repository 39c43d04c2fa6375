//! Integration tests of the host kernels: each against a naive f64
//! reference at awkward sizes, on every SIMD path this CPU supports, at one
//! and two threads.

mod attention;
mod gemm;
mod gemv;
mod pointwise;
mod rope;
mod scratch;
mod support;
mod team;
