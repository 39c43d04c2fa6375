//! [`Tokenizer`]: llama2.c's `tokenizer.bin` — `i32 max_token_length`, then
//! per token `f32 score, i32 len, len bytes` — with its byte-pair encoding
//! and decoding. Ids 0 unk, 1 BOS, 2 EOS, 3..=258 the byte pieces
//! `<0x00>`..`<0xFF>`.

use std::collections::HashMap;
use std::path::Path;

use crate::ModelError;

/// The beginning-of-sequence token.
pub const BOS: u32 = 1;
/// The end-of-sequence token.
pub const EOS: u32 = 2;

/// Every byte value, for pieces decoded from `<0xHH>`.
static BYTES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = i as u8;
        i += 1;
    }
    table
};

/// The most bytes a tokenizer file may have (the largest real ones are a
/// few MB).
const MAX_TOKENIZER_BYTES: usize = 1 << 30;

/// A vocabulary with scores, and the lookup from piece to id.
pub struct Tokenizer {
    pieces: Vec<Vec<u8>>,
    scores: Vec<f32>,
    ids: HashMap<Vec<u8>, u32>,
    max_token_length: usize,
    /// The longest piece there is (the header's `max_token_length` is only
    /// a claim, and a hostile one may be 2^31).
    longest_piece: usize,
}

impl Tokenizer {
    /// Reads the tokenizer at `path`, which must hold exactly `vocab_size`
    /// tokens: fewer entries or bytes left over mean it belongs to another
    /// model.
    ///
    /// Reads no more than such a tokenizer can be (each entry a score, a
    /// length and at most `max(max_token_length, 256)` bytes, and 1 GiB in
    /// all), so a device file or a huge file is refused, not read until
    /// memory runs out.
    pub fn open(path: &Path, vocab_size: usize) -> Result<Tokenizer, ModelError> {
        use std::io::Read;
        let io = |source| ModelError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        crate::config::check_is_file(&file.metadata().map_err(io)?, path)?;
        let mut header = [0u8; 4];
        let got = file.read(&mut header).map_err(io)?;
        let longest = i32::from_le_bytes(header).clamp(256, 1 << 20) as usize;
        let cap = vocab_size
            .checked_mul(8 + longest)
            .and_then(|b| b.checked_add(4))
            .map_or(MAX_TOKENIZER_BYTES, |b| b.min(MAX_TOKENIZER_BYTES));
        let mut bytes = header[..got].to_vec();
        file.take(cap.saturating_sub(got) as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() > cap {
            return Err(ModelError::TokenizerMismatch {
                path: path.to_owned(),
                vocab_size,
                reason: format!(
                    "the file is larger than a tokenizer of {vocab_size} tokens can be ({cap} bytes)"
                ),
            });
        }
        Tokenizer::from_bytes(&bytes, vocab_size, path)
    }

    /// Parses a tokenizer file's bytes; `path` names it in errors.
    pub fn from_bytes(
        bytes: &[u8],
        vocab_size: usize,
        path: &Path,
    ) -> Result<Tokenizer, ModelError> {
        let mismatch = |reason: String| ModelError::TokenizerMismatch {
            path: path.to_owned(),
            vocab_size,
            reason,
        };
        if vocab_size < 3 {
            // Ids 0, 1 and 2 are <unk>, BOS and EOS; encode emits BOS.
            return Err(mismatch(format!(
                "a vocabulary of {vocab_size} tokens cannot hold <unk>, BOS and EOS (ids 0 to 2)"
            )));
        }
        let mut at = 0usize;
        let mut take = |n: usize| -> Option<&[u8]> {
            let slice = bytes.get(at..at.checked_add(n)?)?;
            at += n;
            Some(slice)
        };
        let word = |b: &[u8]| i32::from_le_bytes(b.try_into().expect("four bytes"));
        let max_token_length = take(4)
            .map(word)
            .ok_or_else(|| mismatch("the file is too short for its header".into()))?;
        // Reserve only what the file can hold: every entry takes at least
        // its score and its length (8 bytes), whatever the model claims.
        let room = vocab_size.min(bytes.len().saturating_sub(4) / 8);
        let mut pieces = Vec::with_capacity(room);
        let mut scores = Vec::with_capacity(room);
        for i in 0..vocab_size {
            let truncated = || mismatch(format!("the file ends after {i} tokens"));
            let score = f32::from_le_bytes(
                take(4)
                    .ok_or_else(truncated)?
                    .try_into()
                    .expect("four bytes"),
            );
            let len = word(take(4).ok_or_else(truncated)?);
            let len = usize::try_from(len)
                .map_err(|_| mismatch(format!("token {i} has negative length {len}")))?;
            pieces.push(take(len).ok_or_else(truncated)?.to_vec());
            scores.push(score);
        }
        if at != bytes.len() {
            return Err(mismatch(format!(
                "{} bytes are left over after {vocab_size} tokens",
                bytes.len() - at
            )));
        }
        let mut ids = HashMap::with_capacity(vocab_size);
        for (id, piece) in pieces.iter().enumerate() {
            ids.entry(piece.clone()).or_insert(id as u32);
        }
        let longest_piece = pieces.iter().map(Vec::len).max().unwrap_or(0);
        Ok(Tokenizer {
            pieces,
            scores,
            ids,
            max_token_length: max_token_length.max(0) as usize,
            longest_piece,
        })
    }

    /// Tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }

    /// The longest piece, as the file's header states it.
    pub fn max_token_length(&self) -> usize {
        self.max_token_length
    }

    /// The fewest tokens `encode(text, true, false)` can give: BOS, then the
    /// dummy prefix and the text, no piece longer than the longest in the
    /// vocabulary. Lets a caller refuse an over-long prompt before the
    /// (quadratic) encoding.
    pub fn min_tokens(&self, text: &str) -> usize {
        if text.is_empty() {
            return 1;
        }
        1 + (text.len() + 1).div_ceil(self.longest_piece.max(1))
    }

    /// The bytes of token `id`.
    pub fn piece(&self, id: u32) -> &[u8] {
        &self.pieces[id as usize]
    }

    /// Encodes `text` as llama2.c does: BOS if asked, a dummy-prefix space
    /// when the text is not empty, UTF-8 code points (unknown ones as their
    /// bytes + 3; a byte whose piece a small vocabulary lacks as `<unk>`,
    /// id 0), then the adjacent pair whose merge has the best score,
    /// repeatedly; EOS if asked. Every id is inside the vocabulary.
    pub fn encode(&self, text: &str, bos: bool, eos: bool) -> Vec<u32> {
        let mut tokens = Vec::with_capacity(text.len() + 3);
        if bos {
            tokens.push(BOS);
        }
        if !text.is_empty() {
            tokens.extend(self.lookup_or_bytes(b" "));
        }
        let mut buf = [0u8; 4];
        for ch in text.chars() {
            tokens.extend(self.lookup_or_bytes(ch.encode_utf8(&mut buf).as_bytes()));
        }
        let mut merged = Vec::with_capacity(2 * self.longest_piece.max(8));
        loop {
            let mut best: Option<(f32, u32, usize)> = None;
            for i in 0..tokens.len().saturating_sub(1) {
                merged.clear();
                merged.extend_from_slice(&self.pieces[tokens[i] as usize]);
                merged.extend_from_slice(&self.pieces[tokens[i + 1] as usize]);
                if let Some(&id) = self.ids.get(&merged) {
                    let score = self.scores[id as usize];
                    if best.is_none_or(|(s, _, _)| score > s) {
                        best = Some((score, id, i));
                    }
                }
            }
            let Some((_, id, i)) = best else { break };
            tokens[i] = id;
            tokens.remove(i + 1);
        }
        if eos {
            tokens.push(EOS);
        }
        tokens
    }

    /// The id of `piece`, or its bytes as byte tokens (+3), `<unk>` for a
    /// byte past the vocabulary.
    fn lookup_or_bytes(&self, piece: &[u8]) -> Vec<u32> {
        match self.ids.get(piece) {
            Some(&id) => vec![id],
            None => piece
                .iter()
                .map(|&b| {
                    let id = b as u32 + 3;
                    if (id as usize) < self.pieces.len() {
                        id
                    } else {
                        0
                    }
                })
                .collect(),
        }
    }

    /// The text of `token` following `prev`: one leading space stripped
    /// after BOS, and `<0xHH>` pieces as the raw byte.
    pub fn decode(&self, prev: u32, token: u32) -> &[u8] {
        let mut piece = self.pieces[token as usize].as_slice();
        if prev == BOS && piece.first() == Some(&b' ') {
            piece = &piece[1..];
        }
        match parse_byte_piece(piece) {
            Some(byte) => &BYTES[byte as usize..byte as usize + 1],
            None => piece,
        }
    }
}

/// The byte of a `<0xHH>` piece.
fn parse_byte_piece(piece: &[u8]) -> Option<u8> {
    let hex = piece.strip_prefix(b"<0x")?;
    let digits = hex
        .iter()
        .take(2)
        .take_while(|b| b.is_ascii_hexdigit())
        .count();
    if digits == 0 {
        return None;
    }
    u8::from_str_radix(std::str::from_utf8(&hex[..digits]).ok()?, 16).ok()
}

/// What llama2.c's `safe_printf` prints of a piece: nothing for a single
/// byte that is neither printable nor whitespace, and the bytes up to the
/// first NUL otherwise.
pub fn printable(piece: &[u8]) -> &[u8] {
    let end = piece.iter().position(|&b| b == 0).unwrap_or(piece.len());
    let piece = &piece[..end];
    if let [byte] = piece {
        let printable = (0x20..=0x7e).contains(byte);
        let space = matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
        if !(printable || space) {
            return &[];
        }
    }
    piece
}
