//! [`Checkpoint`]: a llama2.c legacy checkpoint, validated against its
//! header before any weight is used, its weights memory-mapped where the
//! alignment allows (or owned, for a model built in memory).

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::{Advice, Mmap, MmapMut};

use crate::ModelError;
use crate::config::{Config, HEADER_BYTES, Layout};

enum Storage {
    /// The file, mapped read-only; the floats start at [`HEADER_BYTES`].
    Mapped(Mmap),
    /// The floats after the header, where no anonymous map could be made.
    Owned(Vec<f32>),
    /// The floats after the header in a read-only anonymous map advised to
    /// use transparent huge pages: a decode token reads every weight, and
    /// with 4 KiB pages the TLB misses of 60 MB cost a fifth of a token.
    Anon(Mmap),
}

/// A model's weights.
pub struct Checkpoint {
    config: Config,
    layout: Layout,
    storage: Storage,
    source: PathBuf,
}

/// One layer's weights, row-major `(out, in)`.
#[derive(Clone, Copy, Debug)]
#[allow(missing_docs)]
pub struct LayerWeights<'a> {
    pub rms_att: &'a [f32],
    pub wq: &'a [f32],
    pub wk: &'a [f32],
    pub wv: &'a [f32],
    pub wo: &'a [f32],
    pub rms_ffn: &'a [f32],
    pub w1: &'a [f32],
    pub w2: &'a [f32],
    pub w3: &'a [f32],
}

/// Checks the file length against the header's sizes.
fn check_length(config: &Config, found: u64, path: &Path) -> Result<Layout, ModelError> {
    let layout = config.layout().ok_or_else(|| ModelError::SizeOverflow {
        path: path.to_owned(),
    })?;
    let expected = layout.total_bytes as u64;
    if found < expected {
        return Err(ModelError::TruncatedCheckpoint {
            path: path.to_owned(),
            expected,
            found,
        });
    }
    if found > expected {
        return Err(ModelError::OversizedCheckpoint {
            path: path.to_owned(),
            expected,
            found,
        });
    }
    Ok(layout)
}

impl Checkpoint {
    /// Opens and validates the checkpoint at `path`, mapping its weights.
    pub fn open(path: &Path) -> Result<Checkpoint, ModelError> {
        let io = |source| ModelError::Io {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let metadata = file.metadata().map_err(io)?;
        crate::config::check_is_file(&metadata, path)?;
        let found = metadata.len();
        // SAFETY: the mapping is read-only and lives as long as the
        // checkpoint. Like every memory-mapped reader, it assumes no other
        // process truncates or rewrites the file while it is open.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        let config = Config::from_header(&map, path)?;
        let layout = check_length(&config, found, path)?;
        let storage = if bytemuck::try_cast_slice::<u8, f32>(&map[HEADER_BYTES..]).is_ok() {
            Storage::Mapped(map)
        } else {
            Storage::Owned(floats_le(&map[HEADER_BYTES..]))
        };
        Ok(Checkpoint {
            config,
            layout,
            storage,
            source: path.to_owned(),
        })
    }

    /// The weights copied out of the file's mapping into anonymous memory
    /// advised to use transparent huge pages, as a built-in model's are. A
    /// decode token reads every weight: from the page cache's 4 KiB pages
    /// (or huge pages, when it happened to hold the file in them) the TLB
    /// misses made decode of the same file vary by 40 % from run to run.
    /// The copy counts toward the memory budget ([`crate::check_memory`]);
    /// a checkpoint already in memory is returned as it is.
    pub fn into_memory(self) -> Checkpoint {
        let Storage::Mapped(map) = &self.storage else {
            return self;
        };
        let bytes = &map[HEADER_BYTES..];
        let storage = match huge_page_copy_bytes(bytes) {
            Some(anon) => Storage::Anon(anon),
            None => Storage::Owned(floats_le(bytes)),
        };
        Checkpoint { storage, ..self }
    }

    /// Validates and copies a checkpoint held in memory; `name` stands for
    /// the path in errors.
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Checkpoint, ModelError> {
        let config = Config::from_header(bytes, Path::new(name))?;
        check_length(&config, bytes.len() as u64, Path::new(name))?;
        Checkpoint::from_floats(config, floats_le(&bytes[HEADER_BYTES..]), name)
    }

    /// A checkpoint from its config and the floats after the header.
    pub fn from_floats(
        config: Config,
        floats: Vec<f32>,
        name: &str,
    ) -> Result<Checkpoint, ModelError> {
        let path = Path::new(name);
        let found = (floats.len() as u64) * 4 + HEADER_BYTES as u64;
        let layout = check_length(&config, found, path)?;
        let storage = match huge_page_copy(&floats) {
            Some(map) => Storage::Anon(map),
            None => Storage::Owned(floats),
        };
        Ok(Checkpoint {
            config,
            layout,
            storage,
            source: path.to_owned(),
        })
    }

    /// The model's shape.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where the weights came from (a path, or a preset's name).
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Whether the weights are memory-mapped rather than copied.
    pub fn is_mapped(&self) -> bool {
        matches!(self.storage, Storage::Mapped(_))
    }

    fn floats(&self) -> &[f32] {
        match &self.storage {
            Storage::Mapped(map) => bytemuck::cast_slice(&map[HEADER_BYTES..]),
            Storage::Owned(v) => v,
            Storage::Anon(map) => bytemuck::cast_slice(&map[..]),
        }
    }

    /// Every float after the header, in file order: what a device backend
    /// uploads once.
    pub fn tensors(&self) -> &[f32] {
        self.floats()
    }

    /// Where each tensor lies in [`Checkpoint::tensors`].
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The token embedding table `(vocab_size, dim)`.
    pub fn token_embedding(&self) -> &[f32] {
        &self.floats()[self.layout.token_embedding.clone()]
    }

    /// The final RMSNorm weight.
    pub fn rms_final(&self) -> &[f32] {
        &self.floats()[self.layout.rms_final.clone()]
    }

    /// The classifier `(vocab_size, dim)`: the embedding when shared.
    pub fn wcls(&self) -> &[f32] {
        &self.floats()[self.layout.wcls.clone()]
    }

    /// Layer `l`'s weights.
    pub fn layer(&self, l: usize) -> LayerWeights<'_> {
        assert!(
            l < self.config.n_layers,
            "layer {l} of {}",
            self.config.n_layers
        );
        let f = self.floats();
        let part = |range: &std::ops::Range<usize>| {
            let per_layer = range.len() / self.config.n_layers;
            &f[range.start + l * per_layer..range.start + (l + 1) * per_layer]
        };
        let lay = &self.layout;
        LayerWeights {
            rms_att: part(&lay.rms_att),
            wq: part(&lay.wq),
            wk: part(&lay.wk),
            wv: part(&lay.wv),
            wo: part(&lay.wo),
            rms_ffn: part(&lay.rms_ffn),
            w1: part(&lay.w1),
            w2: part(&lay.w2),
            w3: part(&lay.w3),
        }
    }

    /// Bytes of weights a decode step reads: every layer's matrices and the
    /// classifier (norm weights are negligible).
    pub fn decode_weight_bytes(&self) -> usize {
        let c = &self.config;
        let per_layer = 2 * c.dim * c.dim + 2 * c.kv_dim() * c.dim + 3 * c.hidden_dim * c.dim;
        4 * (c.n_layers * per_layer + c.vocab_size * c.dim)
    }
}

/// `floats` copied into a read-only anonymous map with transparent huge
/// pages asked for, or `None` where that fails.
fn huge_page_copy(floats: &[f32]) -> Option<Mmap> {
    huge_page_copy_bytes(bytemuck::cast_slice(floats))
}

/// `bytes` (little-endian floats) copied into a read-only anonymous map
/// with transparent huge pages asked for before the first write, so the
/// pages are faulted in as huge pages; `None` where that fails.
fn huge_page_copy_bytes(bytes: &[u8]) -> Option<Mmap> {
    let mut map = MmapMut::map_anon(bytes.len().max(1)).ok()?;
    #[cfg(target_os = "linux")]
    let _ = map.advise(Advice::HugePage);
    map[..bytes.len()].copy_from_slice(bytes);
    map.make_read_only().ok()
}

/// Little-endian floats from bytes (a whole number of them).
fn floats_le(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().expect("four bytes")))
        .collect()
}
