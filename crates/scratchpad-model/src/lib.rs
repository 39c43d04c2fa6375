//! The Llama model of the scratchpad runtime: llama2.c checkpoints
//! ([`Checkpoint`], memory-mapped) and tokenizers ([`Tokenizer`]), the
//! [`Sampler`], the forward pass ([`Transformer`]) over a small [`Backend`]
//! trait with a CPU adapter ([`CpuBackend`]), `run.c`'s generation loop
//! ([`generate`]), and the synthetic model ([`synthetic`]) that needs no
//! files.

mod backend;
mod checkpoint;
mod config;
mod cpu;
mod error;
mod generate;
mod sampler;
pub mod synthetic;
mod tokenizer;
mod transformer;

pub use backend::Backend;
pub use checkpoint::{Checkpoint, LayerWeights};
pub use config::{Config, HEADER_BYTES, Layout};
pub use cpu::CpuBackend;
pub use error::ModelError;
pub use generate::{Generation, generate};
pub use sampler::{Sampler, argmax};
pub use tokenizer::{BOS, EOS, Tokenizer, printable};
pub use transformer::Transformer;
