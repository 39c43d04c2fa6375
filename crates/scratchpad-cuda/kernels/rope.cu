// Rotary embedding on interleaved pairs with llama2.c's frequencies, for
// n_tokens tokens at positions *pos .. *pos + n_tokens (read from the
// device). One thread per (token, head, pair) of q, then of k.

extern "C" __global__ void rope(float* q, float* k, const int* pos, int n_heads, int n_kv_heads,
                                int head_dim, int n_tokens) {
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
    double theta = pow(10000.0, -2.0 * pair / head_dim);
    double angle = (double)(*pos + t) * theta;
    float c = (float)cos(angle), s = (float)sin(angle);
    float* p = v + (long long)idx * 2;
    float a = p[0], b = p[1];
    p[0] = a * c - b * s;
    p[1] = a * s + b * c;
}
