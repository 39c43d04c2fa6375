//! Tokenizer encodings against the reference, decoding, and mismatches.

use std::path::Path;

use scratchpad_model::{ModelError, Tokenizer, printable};

use crate::support::data;

/// `"text" -> ids` lines.
fn cases(file: &str) -> Vec<(String, Vec<u32>)> {
    let text = std::fs::read_to_string(data(file)).unwrap();
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (quoted, ids) = line.rsplit_once(" -> ").unwrap();
            let text = quoted.strip_prefix('"').unwrap().strip_suffix('"').unwrap();
            (
                text.to_owned(),
                ids.split_whitespace().map(|t| t.parse().unwrap()).collect(),
            )
        })
        .collect()
}

#[test]
fn encodings_match_the_reference() {
    for (file, tokenizer, vocab) in [
        ("reference/encode_tok512.txt", "models/tok512.bin", 512),
        (
            "reference/encode_tok32000.txt",
            "models/tokenizer.bin",
            32000,
        ),
    ] {
        let (cases, path) = (cases(file), data(tokenizer));
        let t = Tokenizer::open(&path, vocab).unwrap();
        assert!(!cases.is_empty());
        for (text, expected) in cases {
            assert_eq!(t.encode(&text, true, false), expected, "{file}: {text:?}");
        }
    }
}

#[test]
fn decoding_strips_the_space_after_bos_and_maps_byte_pieces() {
    let path = data("models/tokenizer.bin");
    let t = Tokenizer::open(&path, 32000).unwrap();
    let once = t.encode("Once", false, false)[0];
    assert_eq!(t.piece(once), b" Once");
    assert_eq!(t.decode(1, once), b"Once");
    assert_eq!(t.decode(5, once), b" Once");
    // <0x0A> is id 13 (byte 10 + 3).
    assert_eq!(t.piece(13), b"<0x0A>");
    assert_eq!(t.decode(5, 13), b"\n");
    assert_eq!(printable(t.decode(5, 13)), b"\n");
    // An unprintable single byte prints nothing.
    assert_eq!(printable(t.decode(5, 3 + 7)), b"");
}

#[test]
fn a_tokenizer_of_another_vocabulary_is_rejected() {
    let (small, large) = (data("models/tok512.bin"), data("models/tokenizer.bin"));
    let too_few = Tokenizer::open(&small, 32000).err().unwrap();
    assert!(matches!(too_few, ModelError::TokenizerMismatch { .. }));
    assert!(
        too_few.to_string().contains("ends after 512 tokens"),
        "{too_few}"
    );
    // Opened, it is refused from its size; parsed whole, by its leftovers.
    let too_large = Tokenizer::open(&large, 512).err().unwrap();
    assert!(
        too_large
            .to_string()
            .contains("larger than a tokenizer of 512 tokens"),
        "{too_large}"
    );
    let Err(left_over) = Tokenizer::from_bytes(&std::fs::read(&large).unwrap(), 512, &large) else {
        panic!("the 32000-piece tokenizer is not one of 512");
    };
    assert!(left_over.to_string().contains("left over"), "{left_over}");
    let missing = Tokenizer::open(&small.with_file_name("no-such-tokenizer.bin"), 512)
        .err()
        .unwrap();
    assert!(matches!(missing, ModelError::Io { .. }), "{missing}");
}

/// A tokenizer file of `pieces` (score 0 each).
fn tokenizer_bytes(pieces: &[&[u8]]) -> Vec<u8> {
    let mut bytes = 8i32.to_le_bytes().to_vec();
    for piece in pieces {
        bytes.extend(0f32.to_le_bytes());
        bytes.extend((piece.len() as i32).to_le_bytes());
        bytes.extend(*piece);
    }
    bytes
}

#[test]
fn a_small_vocabulary_encodes_missing_bytes_as_unk() {
    // Ten pieces: <unk>, BOS, EOS, then seven byte pieces; every other byte
    // has no piece.
    let mut pieces: Vec<Vec<u8>> = vec![b"<unk>".to_vec(), b"<s>".to_vec(), b"</s>".to_vec()];
    pieces.extend((0..7).map(|b| format!("<0x{b:02X}>").into_bytes()));
    let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
    let t = Tokenizer::from_bytes(&tokenizer_bytes(&refs), 10, Path::new("small.bin")).unwrap();
    let ids = t.encode("héllo, wörld", true, true);
    assert!(ids.iter().all(|&id| id < 10), "{ids:?}");
    assert!(ids.contains(&0), "unknown bytes are <unk>: {ids:?}");
}

#[test]
fn a_huge_claimed_vocabulary_reserves_only_what_the_file_holds() {
    // A 20-byte file for a model claiming 2^31 - 1 tokens: refused at once,
    // without reserving for two billion entries.
    let bytes = tokenizer_bytes(&[b"a"]);
    let Err(e) = Tokenizer::from_bytes(&bytes, i32::MAX as usize, Path::new("tiny.bin")) else {
        panic!("a 20-byte file cannot hold 2^31 - 1 tokens");
    };
    assert!(e.to_string().contains("ends after 1 tokens"), "{e}");
}

#[test]
fn a_header_claiming_huge_pieces_does_not_size_encodes_buffers() {
    // Found by the tokenizer fuzz target: the header's max_token_length
    // (2^31 - 1 here) sized a buffer of encode, a 4 GB allocation.
    let mut bytes = tokenizer_bytes(&[b"<unk>", b"<s>", b"</s>", b"a", b"b", b"ab"]);
    bytes[..4].copy_from_slice(&i32::MAX.to_le_bytes());
    let t = Tokenizer::from_bytes(&bytes, 6, Path::new("claims.bin")).unwrap();
    // The dummy-prefix space has no piece here: <unk>, then the merge.
    assert_eq!(t.encode("ab", false, false), vec![0, 5]);
}

#[test]
fn a_vocabulary_without_room_for_bos_is_refused() {
    // Found by the tokenizer fuzz target: a one-token vocabulary made
    // encode index its BOS piece out of range.
    for vocab in 1..3 {
        let pieces: Vec<&[u8]> = [&b"<unk>"[..], b"<s>"][..vocab].to_vec();
        let Err(e) = Tokenizer::from_bytes(&tokenizer_bytes(&pieces), vocab, Path::new("tiny.bin"))
        else {
            panic!("a vocabulary of {vocab} was accepted");
        };
        assert!(
            e.to_string().contains("cannot hold <unk>, BOS and EOS"),
            "{e}"
        );
    }
}
