//! The Llama model of the scratchpad runtime: llama2.c checkpoints
//! ([`Checkpoint`], memory-mapped) and tokenizers ([`Tokenizer`]), the
//! [`Sampler`], the forward pass ([`Transformer`]) over a small [`Backend`]
//! trait with a CPU adapter ([`CpuBackend`]) and a CUDA one ([`CudaBackend`]), `run.c`'s generation loop
//! ([`generate`]), and the synthetic model ([`synthetic`]) that needs no
//! files.

mod backend;
mod checkpoint;
mod config;
mod cpu;
mod cuda;
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
pub use cuda::{CudaBackend, CudaCounters, CudaOptions, GRAPH_STRATEGIES, check_graph_strategy};
pub use error::ModelError;
pub use generate::{Generation, generate};
pub use sampler::{Sampler, argmax};
pub use tokenizer::{BOS, EOS, Tokenizer, printable};
pub use transformer::Transformer;
