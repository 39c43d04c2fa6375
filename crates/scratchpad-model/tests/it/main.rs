//! Integration tests of the model: the real stories260K model against an
//! independent implementation's outputs (from `testdata/`; a missing file
//! fails), the synthetic model, and every bad input.

mod checkpoint;
mod cuda;
mod reference;
mod sampler;
mod support;
mod synthetic;
mod tokenizer;
