// RMSNorm, one block per row: out = x / sqrt(mean(x^2) + eps) * weight.

extern "C" __global__ void rms_norm(const float* x, const float* weight, float* out, int dim, float eps) {
    extern __shared__ float partial[];
    const float* row = x + (long long)blockIdx.x * dim;
    float* out_row = out + (long long)blockIdx.x * dim;
    float sum = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) sum += row[i] * row[i];
    partial[threadIdx.x] = sum;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
        __syncthreads();
    }
    float scale = rsqrtf(partial[0] / dim + eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) out_row[i] = weight[i] * (scale * row[i]);
}
