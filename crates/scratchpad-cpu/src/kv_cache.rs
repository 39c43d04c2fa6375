//! The KV cache: persistent keys and values of every layer and position,
//! owned by the model (not the pool), laid out `[layer][position][kv_dim]`.

/// Keys and values for `n_layers` layers of up to `seq_len` positions of
/// `kv_dim` floats, allocated once.
#[derive(Clone, Debug)]
pub struct KvCache {
    n_layers: usize,
    seq_len: usize,
    kv_dim: usize,
    keys: Vec<f32>,
    values: Vec<f32>,
}

impl KvCache {
    /// A zeroed cache.
    ///
    /// # Panics
    ///
    /// When `n_layers × seq_len × kv_dim` overflows.
    pub fn new(n_layers: usize, seq_len: usize, kv_dim: usize) -> Self {
        let len = n_layers
            .checked_mul(seq_len)
            .and_then(|n| n.checked_mul(kv_dim))
            .expect("KvCache::new: n_layers × seq_len × kv_dim overflows");
        KvCache {
            n_layers,
            seq_len,
            kv_dim,
            keys: vec![0.0; len],
            values: vec![0.0; len],
        }
    }

    /// Positions per layer.
    pub fn seq_len(&self) -> usize {
        self.seq_len
    }

    /// Floats per position (`n_kv_heads × head_dim`).
    pub fn kv_dim(&self) -> usize {
        self.kv_dim
    }

    /// Layers.
    pub fn n_layers(&self) -> usize {
        self.n_layers
    }

    fn range(&self, layer: usize, pos: usize, n_tokens: usize) -> std::ops::Range<usize> {
        assert!(
            layer < self.n_layers,
            "KvCache: layer {layer} of {}",
            self.n_layers
        );
        assert!(
            pos + n_tokens <= self.seq_len,
            "KvCache: positions {pos}..{} past seq_len {}",
            pos + n_tokens,
            self.seq_len
        );
        let start = (layer * self.seq_len + pos) * self.kv_dim;
        start..start + n_tokens * self.kv_dim
    }

    /// Stores the keys and values of `k.len() / kv_dim` tokens of `layer`
    /// from position `pos` on.
    ///
    /// # Panics
    ///
    /// When the rows are not whole, differ in length, or pass `seq_len`.
    pub fn append(&mut self, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        assert_eq!(
            k.len(),
            v.len(),
            "KvCache::append: k and v must have the same length"
        );
        assert_eq!(k.len() % self.kv_dim, 0, "KvCache::append: rows of kv_dim");
        let range = self.range(layer, pos, k.len() / self.kv_dim);
        self.keys[range.clone()].copy_from_slice(k);
        self.values[range].copy_from_slice(v);
    }

    /// Keys of `layer` for positions `0..len`.
    pub fn keys(&self, layer: usize, len: usize) -> &[f32] {
        &self.keys[self.range(layer, 0, len)]
    }

    /// Values of `layer` for positions `0..len`.
    pub fn values(&self, layer: usize, len: usize) -> &[f32] {
        &self.values[self.range(layer, 0, len)]
    }

    /// Zeroes the cache for a new prompt.
    pub fn reset(&mut self) {
        self.keys.fill(0.0);
        self.values.fill(0.0);
    }
}
