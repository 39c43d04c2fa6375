//! Checkpoint bytes: parsing never panics, and a parsed checkpoint's
//! tensors are as long as its layout says.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scratchpad_model::Checkpoint;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(model) = Checkpoint::from_bytes(bytes, "fuzz.bin") {
        assert_eq!(model.tensors().len(), model.layout().total_floats);
        let _ = scratchpad_model::RunMemory::of_model(&model);
    }
});
