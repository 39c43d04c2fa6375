//! Checkpoint validation: every malformed file gets its own error, before
//! any weight is used.

use std::path::PathBuf;

use scratchpad_model::{Checkpoint, HEADER_BYTES, ModelError, synthetic};

fn synth_260k() -> Vec<u8> {
    synthetic::file_bytes(
        &synthetic::preset("synth-260k").unwrap(),
        synthetic::DEFAULT_SEED,
    )
    .unwrap()
}

fn with_header(fields: [i32; 7]) -> Vec<u8> {
    fields.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn a_checkpoint_truncated_at_every_tensor_boundary_is_rejected() {
    let bytes = synth_260k();
    let layout = synthetic::preset("synth-260k").unwrap().layout().unwrap();
    let mut cuts: Vec<usize> = vec![0, 3, HEADER_BYTES - 1, HEADER_BYTES];
    cuts.extend(layout.boundaries().iter().map(|&f| HEADER_BYTES + 4 * f));
    cuts.extend(
        layout
            .boundaries()
            .iter()
            .map(|&f| HEADER_BYTES + 4 * f - 1),
    );
    for cut in cuts.into_iter().filter(|&c| c < bytes.len()) {
        let err = Checkpoint::from_bytes(&bytes[..cut], "cut.bin")
            .err()
            .unwrap_or_else(|| panic!("accepted {cut} bytes"));
        assert!(
            matches!(err, ModelError::TruncatedCheckpoint { .. }),
            "{cut} bytes: {err}"
        );
        assert!(
            err.to_string().contains("cut.bin") && err.to_string().contains("truncated"),
            "{err}"
        );
    }
    assert!(Checkpoint::from_bytes(&bytes, "whole.bin").is_ok());
}

#[test]
fn an_oversized_checkpoint_is_rejected() {
    let mut bytes = synth_260k();
    bytes.extend_from_slice(&[0; 8]);
    assert!(matches!(
        Checkpoint::from_bytes(&bytes, "big.bin"),
        Err(ModelError::OversizedCheckpoint { .. })
    ));
}

#[test]
fn inconsistent_headers_are_rejected_with_the_field() {
    let cases: [([i32; 7], &str); 7] = [
        ([0, 172, 5, 8, 4, 512, 512], "dim"),
        ([64, -1, 5, 8, 4, 512, 512], "hidden_dim"),
        ([64, 172, 5, 7, 1, 512, 512], "must divide dim"),
        ([64, 172, 5, 8, 3, 512, 512], "must divide n_heads"),
        ([64, 172, 5, 8, 4, 0, 512], "vocab_size"),
        ([64, 172, 5, 64, 64, 512, 512], "even"),
        (
            [1 << 30, i32::MAX, i32::MAX, 2, 2, i32::MAX, i32::MAX],
            "overflow",
        ),
    ];
    for (header, expected) in cases {
        let err = Checkpoint::from_bytes(&with_header(header), "bad.bin")
            .err()
            .unwrap();
        assert!(
            err.to_string().contains(expected),
            "{header:?}: expected `{expected}` in `{err}`"
        );
    }
}

#[test]
fn files_are_mapped_and_missing_files_named() {
    let dir = std::env::temp_dir().join(format!("scratchpad-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("synth.bin");
    std::fs::write(&path, synth_260k()).unwrap();
    let loaded = Checkpoint::open(&path).unwrap();
    assert!(
        loaded.is_mapped(),
        "a 4-byte aligned payload is mapped, not copied"
    );
    assert_eq!(loaded.config().vocab_size, 512);
    // Copied into memory: the same weights, no longer mapped, and the copy
    // counts toward the budget (checked before it is made).
    let mapped_need = scratchpad_model::RunMemory::of_model(&loaded)
        .unwrap()
        .total()
        .unwrap();
    let copied_need = scratchpad_model::RunMemory::of_model_copied(&loaded, true)
        .unwrap()
        .total()
        .unwrap();
    assert_eq!(copied_need - mapped_need, loaded.layout().total_bytes);
    assert!(scratchpad_model::check_memory_copied(&loaded, Some(copied_need - 1), true).is_err());
    assert!(scratchpad_model::check_memory_copied(&loaded, Some(copied_need - 1), false).is_ok());
    let weights: Vec<f32> = loaded.tensors().to_vec();
    let copied = loaded.into_memory();
    assert!(!copied.is_mapped());
    assert_eq!(copied.tensors(), &weights[..]);
    let missing = Checkpoint::open(&PathBuf::from("/nonexistent/model.bin"))
        .err()
        .unwrap();
    assert!(
        matches!(missing, ModelError::Io { .. })
            && missing.to_string().contains("/nonexistent/model.bin")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_file_that_is_no_checkpoint_is_named_so_not_truncated() {
    // A short text file, and bytes whose header fields are mostly
    // negative or absurd counts: "not a llama2.c checkpoint", naming why.
    let text = Checkpoint::from_bytes(b"this is not a model at al", "notes.bin")
        .err()
        .unwrap()
        .to_string();
    assert!(
        text.contains("not a llama2.c checkpoint") && text.contains("begins with text"),
        "{text}"
    );
    let header = [-5i32, -7, 1 << 20, -1, 1 << 22, 3, -9];
    let bytes: Vec<u8> = header.iter().flat_map(|v| v.to_le_bytes()).collect();
    let err = Checkpoint::from_bytes(&bytes, "noise.bin")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("not a llama2.c checkpoint"), "{err}");
    // A real header cut short is still called truncated.
    let cut = &synth_260k()[..20];
    let err = Checkpoint::from_bytes(cut, "cut.bin")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("truncated"), "{err}");
}
