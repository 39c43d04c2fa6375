//! The Llama model of the scratchpad runtime: llama2.c checkpoints
//! ([`Checkpoint`], memory-mapped) and tokenizers ([`Tokenizer`]), the
//! [`Sampler`], the forward pass written once ([`llama::forward`]) over the
//! ops of a [`Device`] ([`Cpu`], [`Cuda`]), the model on a device
//! ([`Llama`]: [`CpuBackend`], [`CudaBackend`]) behind the object-safe
//! [`Backend`], the driver ([`Transformer`]), the one place a device is
//! chosen ([`Engine`]), `run.c`'s generation loop ([`generate`]), and the
//! synthetic model ([`synthetic`]) that needs no files.

mod backend;
mod budget;
mod checkpoint;
mod config;
mod cpu;
mod cuda;
pub mod device;
mod engine;
mod error;
mod generate;
pub mod llama;
mod sampler;
pub mod synthetic;
mod tokenizer;
mod transformer;

pub use backend::Backend;
pub use budget::{RunMemory, available_memory, check_memory, check_memory_copied};
pub use checkpoint::{Checkpoint, LayerWeights};
pub use config::{Config, HEADER_BYTES, Layout};
pub use cpu::{Cpu, CpuBackend};
pub use cuda::{
    Cuda, CudaBackend, CudaCounters, CudaOptions, check_graph_strategy, graph_strategies,
};
pub use device::Device;
pub use engine::{DeviceChoice, Engine, check_simd_env, host_simd};
pub use error::ModelError;
pub use generate::{Generation, generate};
pub use llama::Llama;
pub use sampler::{Sampler, argmax, argmax_finite};
pub use scratchpad_cpu::Team;
pub use scratchpad_cuda::Matmul;
pub use tokenizer::{BOS, EOS, Tokenizer, printable};
pub use transformer::Transformer;
