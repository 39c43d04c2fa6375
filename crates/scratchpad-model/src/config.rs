//! [`Config`]: the seven-integer header of a llama2.c checkpoint, validated,
//! and the sizes that follow from it.

use std::ops::Range;
use std::path::Path;

use crate::ModelError;
use crate::device::{Matrix, Norm};

/// Bytes of the header: seven little-endian `i32`.
pub const HEADER_BYTES: usize = 28;

/// A Llama model's shape, as a llama2.c checkpoint header states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Width of the residual stream.
    pub dim: usize,
    /// Width of the feed-forward hidden layer.
    pub hidden_dim: usize,
    /// Transformer layers.
    pub n_layers: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (divides `n_heads`).
    pub n_kv_heads: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Context length.
    pub seq_len: usize,
    /// The classifier shares the token embedding (positive `vocab_size` in
    /// the header); otherwise it is stored after the legacy RoPE tables.
    pub shared_classifier: bool,
}

impl Config {
    /// Width of one head.
    pub fn head_dim(&self) -> usize {
        self.dim / self.n_heads
    }

    /// Width of a position's keys (or values): `n_kv_heads × head_dim`.
    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_dim()
    }

    /// The header's seven fields (vocabulary negative for an unshared
    /// classifier).
    pub fn header(&self) -> [i32; 7] {
        let vocab = self.vocab_size as i32;
        [
            self.dim as i32,
            self.hidden_dim as i32,
            self.n_layers as i32,
            self.n_heads as i32,
            self.n_kv_heads as i32,
            if self.shared_classifier {
                vocab
            } else {
                -vocab
            },
            self.seq_len as i32,
        ]
    }

    /// Parses and validates a header; `path` names the file in errors.
    pub fn from_header(bytes: &[u8], path: &Path) -> Result<Config, ModelError> {
        if let Some(reason) = nonsense_header(bytes) {
            return Err(ModelError::NotACheckpoint {
                path: path.to_owned(),
                reason,
            });
        }
        if bytes.len() < HEADER_BYTES {
            return Err(ModelError::TruncatedCheckpoint {
                path: path.to_owned(),
                expected: HEADER_BYTES as u64,
                found: bytes.len() as u64,
            });
        }
        let field =
            |i: usize| i32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().expect("four bytes"));
        let invalid =
            |field: &'static str, value: i32, reason: &'static str| ModelError::InvalidHeader {
                path: path.to_owned(),
                field,
                value: value as i64,
                reason,
            };
        let names = [
            "dim",
            "hidden_dim",
            "n_layers",
            "n_heads",
            "n_kv_heads",
            "vocab_size",
            "seq_len",
        ];
        let mut values = [0usize; 7];
        for (i, name) in names.iter().enumerate() {
            let v = field(i);
            let magnitude = if i == 5 {
                v.unsigned_abs() as i64
            } else {
                v as i64
            };
            if magnitude <= 0 {
                return Err(invalid(name, v, "must be positive"));
            }
            values[i] = magnitude as usize;
        }
        let [
            dim,
            hidden_dim,
            n_layers,
            n_heads,
            n_kv_heads,
            vocab_size,
            seq_len,
        ] = values;
        if dim % n_heads != 0 {
            return Err(invalid("n_heads", n_heads as i32, "must divide dim"));
        }
        if n_heads % n_kv_heads != 0 {
            return Err(invalid(
                "n_kv_heads",
                n_kv_heads as i32,
                "must divide n_heads",
            ));
        }
        if (dim / n_heads) % 2 != 0 {
            return Err(invalid(
                "n_heads",
                n_heads as i32,
                "dim / n_heads must be even for rotary embeddings",
            ));
        }
        let config = Config {
            dim,
            hidden_dim,
            n_layers,
            n_heads,
            n_kv_heads,
            vocab_size,
            seq_len,
            shared_classifier: field(5) > 0,
        };
        config.layout().ok_or_else(|| ModelError::SizeOverflow {
            path: path.to_owned(),
        })?;
        Ok(config)
    }

    /// Offsets (in floats, after the header) of every tensor, or `None` when
    /// the sizes overflow.
    pub fn layout(&self) -> Option<Layout> {
        let Config {
            dim,
            hidden_dim,
            n_layers,
            vocab_size,
            seq_len,
            ..
        } = *self;
        let kv_dim = self.kv_dim();
        let mul = |a: usize, b: usize| a.checked_mul(b);
        let mut at = 0usize;
        let mut take = |n: Option<usize>| -> Option<Range<usize>> {
            let n = n?;
            let start = at;
            at = at.checked_add(n)?;
            Some(start..at)
        };
        let token_embedding = take(mul(vocab_size, dim))?;
        let rms_att = take(mul(n_layers, dim))?;
        let wq = take(mul(n_layers, mul(dim, dim)?))?;
        let wk = take(mul(n_layers, mul(kv_dim, dim)?))?;
        let wv = take(mul(n_layers, mul(kv_dim, dim)?))?;
        let wo = take(mul(n_layers, mul(dim, dim)?))?;
        let rms_ffn = take(mul(n_layers, dim))?;
        let w1 = take(mul(n_layers, mul(hidden_dim, dim)?))?;
        let w2 = take(mul(n_layers, mul(dim, hidden_dim)?))?;
        let w3 = take(mul(n_layers, mul(hidden_dim, dim)?))?;
        let rms_final = take(Some(dim))?;
        let rope_tables = take(mul(2, mul(seq_len, self.head_dim() / 2)?))?;
        let wcls = if self.shared_classifier {
            token_embedding.clone()
        } else {
            take(mul(vocab_size, dim))?
        };
        let total_floats = at;
        let total_bytes = total_floats.checked_mul(4)?.checked_add(HEADER_BYTES)?;
        Some(Layout {
            token_embedding,
            rms_att,
            wq,
            wk,
            wv,
            wo,
            rms_ffn,
            w1,
            w2,
            w3,
            rms_final,
            rope_tables,
            wcls,
            total_floats,
            total_bytes,
        })
    }
}

/// Where each tensor lies, in floats after the header, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Layout {
    pub token_embedding: Range<usize>,
    pub rms_att: Range<usize>,
    pub wq: Range<usize>,
    pub wk: Range<usize>,
    pub wv: Range<usize>,
    pub wo: Range<usize>,
    pub rms_ffn: Range<usize>,
    pub w1: Range<usize>,
    pub w2: Range<usize>,
    pub w3: Range<usize>,
    pub rms_final: Range<usize>,
    /// The two legacy RoPE tables, skipped (recomputed instead).
    pub rope_tables: Range<usize>,
    /// The classifier: the embedding when shared.
    pub wcls: Range<usize>,
    /// Floats after the header.
    pub total_floats: usize,
    /// Bytes of the whole file.
    pub total_bytes: usize,
}

impl Layout {
    /// Floats of `matrix` in layer `layer` of `n_layers`.
    pub fn matrix(&self, matrix: Matrix, layer: usize, n_layers: usize) -> Range<usize> {
        let all = match matrix {
            Matrix::Wq => &self.wq,
            Matrix::Wk => &self.wk,
            Matrix::Wv => &self.wv,
            Matrix::Wo => &self.wo,
            Matrix::W1 => &self.w1,
            Matrix::W2 => &self.w2,
            Matrix::W3 => &self.w3,
        };
        per_layer(all, layer, n_layers)
    }

    /// Floats of the RMSNorm weight `norm` of a model of `n_layers`.
    pub fn norm(&self, norm: Norm, n_layers: usize) -> Range<usize> {
        match norm {
            Norm::Attention(l) => per_layer(&self.rms_att, l, n_layers),
            Norm::FeedForward(l) => per_layer(&self.rms_ffn, l, n_layers),
            Norm::Final => self.rms_final.clone(),
        }
    }

    /// The ends of every tensor, in file order: the offsets a truncation
    /// test cuts at.
    pub fn boundaries(&self) -> Vec<usize> {
        let mut ends = vec![
            self.token_embedding.end,
            self.rms_att.end,
            self.wq.end,
            self.wk.end,
            self.wv.end,
            self.wo.end,
            self.rms_ffn.end,
            self.w1.end,
            self.w2.end,
            self.w3.end,
            self.rms_final.end,
            self.rope_tables.end,
            self.wcls.end,
        ];
        ends.sort_unstable();
        ends.dedup();
        ends
    }
}

/// Layer `layer` of a tensor stored for all `n_layers` in turn.
fn per_layer(all: &Range<usize>, layer: usize, n_layers: usize) -> Range<usize> {
    assert!(layer < n_layers, "layer {layer} of {n_layers}");
    let len = all.len() / n_layers;
    let start = all.start + layer * len;
    start..start + len
}

/// Refuses a directory (which `mmap` reports as "No such device") or any
/// other non-file given where a model or tokenizer file belongs.
pub(crate) fn check_is_file(metadata: &std::fs::Metadata, path: &Path) -> Result<(), ModelError> {
    let kind = metadata.file_type();
    if kind.is_file() {
        return Ok(());
    }
    Err(ModelError::NotAFile {
        path: path.to_owned(),
        what: if kind.is_dir() {
            "a directory"
        } else {
            "a device, FIFO or socket"
        },
    })
}

/// Largest layer or head count taken as plausible; sizes (dim,
/// hidden_dim, vocab_size, seq_len) are only required to be positive, and
/// huge ones are left to the size-overflow check.
const PLAUSIBLE_COUNT: i64 = 1 << 12;

/// Why `bytes` is not the start of a llama2.c checkpoint at all, when it
/// clearly is not: it begins with text, or most of the header's fields are
/// numbers no model has. A header that is merely inconsistent (one bad
/// field) or cut short is left to the precise checks.
fn nonsense_header(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(HEADER_BYTES)];
    if head.len() >= 4
        && head
            .iter()
            .all(|&b| b == b'\n' || b == b'\r' || b == b'\t' || (0x20..0x7f).contains(&b))
    {
        let text: String = String::from_utf8_lossy(head).chars().take(24).collect();
        return Some(format!(
            "it begins with text ({:?}); a checkpoint begins with seven 32-bit integers",
            text
        ));
    }
    let fields: Vec<i64> = head
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes(c.try_into().expect("four bytes")) as i64)
        .collect();
    if fields.is_empty() {
        return None;
    }
    let implausible = fields
        .iter()
        .enumerate()
        .filter(|&(i, &v)| {
            let v = if i == 5 { v.abs() } else { v };
            v <= 0 || (matches!(i, 2..=4) && v > PLAUSIBLE_COUNT)
        })
        .count();
    (2 * implausible > fields.len()).then(|| {
        format!(
            "{implausible} of its first {} header fields are no model's sizes ({})",
            fields.len(),
            fields
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}
