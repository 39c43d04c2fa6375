//! Encoding on the real tokenizers: ids inside the vocabulary, and
//! decoding the ids gives the text back (with the dummy-prefix space the
//! encoder adds, which decode strips after BOS).
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use scratchpad_model::Tokenizer;

fn tokenizers() -> &'static [Tokenizer] {
    static TOKENIZERS: OnceLock<Vec<Tokenizer>> = OnceLock::new();
    TOKENIZERS.get_or_init(|| {
        let data = std::env::var_os("SCRATCHPAD_TEST_DATA").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata"),
            std::path::PathBuf::from,
        );
        [("models/tok512.bin", 512), ("models/tokenizer.bin", 32000)]
            .iter()
            .map(|(file, vocab)| {
                Tokenizer::open(&data.join(file), *vocab)
                    .unwrap_or_else(|e| panic!("the encode target needs {file}: {e}"))
            })
            .collect()
    })
}

fuzz_target!(|text: &str| {
    if text.len() > 4096 {
        return;
    }
    for t in tokenizers() {
        let ids = t.encode(text, true, false);
        assert!(ids.iter().all(|&id| (id as usize) < t.vocab_size()));
        let mut decoded = Vec::new();
        let mut prev = ids[0];
        for &id in &ids[1..] {
            decoded.extend_from_slice(t.decode(prev, id));
            prev = id;
        }
        assert_eq!(decoded, text.as_bytes(), "{ids:?}");
    }
});
