// Element-wise kernels: residual add, SwiGLU, embedding rows, KV-cache append.
// Everything that changes per step (token ids, the position) is read from
// device memory, so a captured graph replays with new values.

extern "C" __global__ void residual_add(float* x, const float* delta, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += delta[i];
}

// gate = silu(gate) * up
extern "C" __global__ void swiglu(float* gate, const float* up, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

// out[t][d] = table[tokens[t]][d] for t < n_tokens
extern "C" __global__ void embed(const float* table, const int* tokens, float* out, int dim, int n_tokens) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < dim * n_tokens) {
        int t = i / dim, d = i % dim;
        out[i] = table[(long long)tokens[t] * dim + d];
    }
}

// keys[(pos + t) * kv_dim + d] = k[t * kv_dim + d], the same for values;
// `keys` and `values` address one layer's cache, `pos` lives on the device.
extern "C" __global__ void kv_append(float* keys, float* values, const float* k, const float* v,
                                     const int* pos, int kv_dim, int n_tokens) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < kv_dim * n_tokens) {
        long long at = (long long)(*pos) * kv_dim + i;
        keys[at] = k[i];
        values[at] = v[i];
    }
}
