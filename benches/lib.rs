//! Criterion benches of the scratchpad workspace; this library is empty and
//! exists so the benches have a package. Run them with
//! `cargo bench -p scratchpad-benches`.
#![forbid(unsafe_code)]
