// Causal grouped-query attention: one block per (query, head). Query i sits
// at position *pos + i (read from the device) and attends to cache rows
// 0..=*pos + i; head h reads KV head h / (n_heads / n_kv_heads). `scores`
// is a scratch lease of n_queries * n_heads * ctx_stride floats.

extern "C" __global__ void attention(const float* q, const float* keys, const float* values, float* out,
                                     float* scores, const int* pos, int n_heads, int n_kv_heads,
                                     int head_dim, int ctx_stride) {
    extern __shared__ float reduce[];
    int h = blockIdx.x % n_heads;
    int i = blockIdx.x / n_heads;
    int len = *pos + i + 1;
    int kv_dim = n_kv_heads * head_dim;
    int kv_offset = (h / (n_heads / n_kv_heads)) * head_dim;
    const float* qv = q + ((long long)i * n_heads + h) * head_dim;
    float* row = scores + (long long)blockIdx.x * ctx_stride;
    float scale = rsqrtf((float)head_dim);

    float local_max = __int_as_float(0xff800000);  // -infinity: NVRTC has no math headers
    for (int t = threadIdx.x; t < len; t += blockDim.x) {
        const float* kv = keys + (long long)t * kv_dim + kv_offset;
        float s = 0.0f;
        for (int d = 0; d < head_dim; d++) s += qv[d] * kv[d];
        s *= scale;
        row[t] = s;
        local_max = fmaxf(local_max, s);
    }
    reduce[threadIdx.x] = local_max;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) reduce[threadIdx.x] = fmaxf(reduce[threadIdx.x], reduce[threadIdx.x + s]);
        __syncthreads();
    }
    float max = reduce[0];
    __syncthreads();

    float local_sum = 0.0f;
    for (int t = threadIdx.x; t < len; t += blockDim.x) {
        float e = expf(row[t] - max);
        row[t] = e;
        local_sum += e;
    }
    reduce[threadIdx.x] = local_sum;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) reduce[threadIdx.x] += reduce[threadIdx.x + s];
        __syncthreads();
    }
    float inv = 1.0f / reduce[0];
    __syncthreads();

    float* o = out + ((long long)i * n_heads + h) * head_dim;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        float acc = 0.0f;
        for (int t = 0; t < len; t++) acc += row[t] * values[(long long)t * kv_dim + kv_offset + d];
        o[d] = acc * inv;
    }
}
