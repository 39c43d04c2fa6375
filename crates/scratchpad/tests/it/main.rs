//! Integration tests of the scratch SPI: the conformance suite every strategy
//! and the thread-safe wrapper pass, property tests, the planned strategy,
//! traces and the layer trace.

mod bfc;
mod conformance;
mod layer_trace;
mod planned;
mod properties;
mod registry;
mod support;
mod trace_format;
