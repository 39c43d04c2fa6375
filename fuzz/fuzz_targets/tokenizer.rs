//! Tokenizer bytes for vocabularies of every size, the small ones
//! included: parsing never panics, and a parsed tokenizer encodes and
//! decodes any text to ids inside its vocabulary.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use scratchpad_model::Tokenizer;

fuzz_target!(|input: (u16, &[u8], &str)| {
    let (vocab, bytes, text) = input;
    let vocab = usize::from(vocab % 600).max(1);
    if let Ok(t) = Tokenizer::from_bytes(bytes, vocab, Path::new("fuzz.bin")) {
        let ids = t.encode(text, true, true);
        assert!(ids.iter().all(|&id| (id as usize) < vocab), "{ids:?}");
        let mut prev = 1;
        for &id in &ids {
            let _ = t.decode(prev, id);
            prev = id;
        }
        let _ = t.min_tokens(text);
    }
});
