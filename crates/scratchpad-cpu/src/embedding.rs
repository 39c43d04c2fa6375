//! Token embedding: copy a row of the `(vocab, dim)` table.

/// Copies row `token` of `table` (rows of `out.len()`) into `out`.
///
/// # Panics
///
/// When `token` is out of the table or the table is not whole rows.
pub fn embed(table: &[f32], token: usize, out: &mut [f32]) {
    let dim = out.len();
    assert!(
        dim > 0 && table.len().is_multiple_of(dim),
        "embed: the table must be whole rows of out.len()"
    );
    let vocab = table.len() / dim;
    assert!(
        token < vocab,
        "embed: token {token} is outside the vocabulary of {vocab}"
    );
    out.copy_from_slice(&table[token * dim..(token + 1) * dim]);
}
