// Rotary embedding on interleaved pairs with llama2.c's frequencies, in
// two kernels as on the host: the table of rotations of the step's
// positions (*pos .. *pos + n_tokens, read from the device), computed in
// double precision and rounded, then its application to q and k.

// table[t][i] = (cos((*pos + t) θ_i), sin((*pos + t) θ_i)),
// θ_i = 10000^(-2i / head_dim); one thread per (token, pair).
extern "C" __global__ void rope_table(float* table, const int* pos, int head_dim, int n_tokens) {
    int half = head_dim / 2;
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_tokens * half) return;
    int pair = i % half, t = i / half;
    double theta = 1.0 / pow(10000.0, (2.0 * pair) / head_dim);
    double angle = (double)(*pos + t) * theta;
    table[2 * i] = (float)cos(angle);
    table[2 * i + 1] = (float)sin(angle);
}

// (a, b) <- (a c - b s, a s + b c) for every pair of every head of q, then
// of k, with (c, s) from the table row of the pair's token.
extern "C" __global__ void apply_rope(float* q, float* k, const float* table, int n_heads,
                                      int n_kv_heads, int head_dim, int n_tokens) {
    int half = head_dim / 2;
    int q_pairs = n_tokens * n_heads * half;
    int k_pairs = n_tokens * n_kv_heads * half;
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    float* v;
    int heads, idx;
    if (i < q_pairs) {
        v = q; heads = n_heads; idx = i;
    } else if (i < q_pairs + k_pairs) {
        v = k; heads = n_kv_heads; idx = i - q_pairs;
    } else {
        return;
    }
    int pair = idx % half;
    int t = idx / (half * heads);
    float c = table[2 * (t * half + pair)], s = table[2 * (t * half + pair) + 1];
    float* p = v + (long long)idx * 2;
    float a = p[0], b = p[1];
    p[0] = a * c - b * s;
    p[1] = a * s + b * c;
}
