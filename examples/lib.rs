//! Examples of the scratchpad workspace; this library is empty and exists so
//! the examples have a package. Run one with
//! `cargo run --release -p scratchpad-examples --example pool_basics`.
#![forbid(unsafe_code)]
