// The hyperconnection pre-norm GEMM (DeepSeek's mHC): for bf16 A [M, K] and fp32
// B [N, K] (N <= 32), D = A @ B^T on the TF32 tensor cores and S = sum_k A^2 per row,
// each over a range of K: split `split` of `splits` covers K-blocks
// [split * KB / splits, (split + 1) * KB / splits) of KB = ceil(K / 64) and writes
// D[split] [M, N] and S[split] [M] (whole tiles: a split with no K writes zeros).
//
// A CTA is one math warpgroup (64 rows) and one producer warp. The producer streams
// 64-column K-blocks of A (bf16, 128-byte rows) and of B (two 32-column halves, fp32
// rounded to TF32 by the tensor copy, as cuBLAS's TF32 GEMMs round it) with TMA into a
// ring of stages. The math threads read their A fragment of each 8-column step (rows
// lane / 4 and + 8, columns lane % 4 and + 4: the layout of wgmma's register operand)
// from the swizzled tile, widen it to fp32 (exact in tf32), add its squares to S and
// run m64nNk8 TF32 MMAs with B from shared memory.
#pragma once

#include <cuda_bf16.h>

#include <deep_gemm/ptx.cuh>

namespace deep_gemm::hc {

constexpr int kBlockM = 64;
constexpr int kBlockK = 64;     // bf16: one 128-byte swizzled row of A
constexpr int kHalfK = 32;      // fp32: one 128-byte swizzled row of B

// wgmma m64nNk8, tf32 x tf32 -> fp32, accumulating into d: A (4 registers per
// thread) from registers, B through a descriptor.
template <int kN>
struct TF32MMA;

template <>
struct TF32MMA<8> {
    __device__ __forceinline__ static void run(const float* a, uint64_t desc_b, float* d) {
        asm volatile(
            "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
            "wgmma.mma_async.sync.aligned.m64n8k8.f32.tf32.tf32 "
            "{%0, %1, %2, %3}, {%4, %5, %6, %7}, %8, p, 1, 1;\n}\n"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
            : "r"(__float_as_uint(a[0])), "r"(__float_as_uint(a[1])), "r"(__float_as_uint(a[2])), "r"(__float_as_uint(a[3])),
              "l"(desc_b));
    }
};
template <>
struct TF32MMA<16> {
    __device__ __forceinline__ static void run(const float* a, uint64_t desc_b, float* d) {
        asm volatile(
            "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
            "wgmma.mma_async.sync.aligned.m64n16k8.f32.tf32.tf32 "
            "{%0, %1, %2, %3, %4, %5, %6, %7}, {%8, %9, %10, %11}, %12, p, 1, 1;\n}\n"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
            : "r"(__float_as_uint(a[0])), "r"(__float_as_uint(a[1])), "r"(__float_as_uint(a[2])), "r"(__float_as_uint(a[3])),
              "l"(desc_b));
    }
};
template <>
struct TF32MMA<24> {
    __device__ __forceinline__ static void run(const float* a, uint64_t desc_b, float* d) {
        asm volatile(
            "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
            "wgmma.mma_async.sync.aligned.m64n24k8.f32.tf32.tf32 "
            "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11}, {%12, %13, %14, %15}, %16, p, 1, 1;\n}\n"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
              "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11])
            : "r"(__float_as_uint(a[0])), "r"(__float_as_uint(a[1])), "r"(__float_as_uint(a[2])), "r"(__float_as_uint(a[3])),
              "l"(desc_b));
    }
};
template <>
struct TF32MMA<32> {
    __device__ __forceinline__ static void run(const float* a, uint64_t desc_b, float* d) {
        asm volatile(
            "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
            "wgmma.mma_async.sync.aligned.m64n32k8.f32.tf32.tf32 "
            "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, {%16, %17, %18, %19}, %20, "
            "p, 1, 1;\n}\n"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
              "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
            : "r"(__float_as_uint(a[0])), "r"(__float_as_uint(a[1])), "r"(__float_as_uint(a[2])), "r"(__float_as_uint(a[3])),
              "l"(desc_b));
    }
};

struct HcArgs {
    float* d;        // [splits, M, N] (splits 1: [M, N])
    float* sqr_sum;  // [splits, M]
    int m, n, k;
    int splits;
};

template <int kN, int kStages>
struct HcLayout {
    static constexpr int kABytes = kBlockM * kBlockK * 2;
    static constexpr int kBHalfBytes = kN * kHalfK * 4;
    static constexpr int kStageBytes = kABytes + 2 * kBHalfBytes;
    static constexpr int kBytes = kStages * kStageBytes + 2 * kStages * 8;
    static_assert(kBHalfBytes % 1024 == 0, "B halves must stay 1024-byte aligned (N a multiple of 8)");
};

// a_map: bf16 [M, K] in boxes of 64 x 64; b_map: fp32 [N, K] in boxes of kN x 32,
// both with the 128-byte swizzle. 160 threads: the math warpgroup, then the producer.
template <int kN, int kStages>
__device__ __forceinline__ void tf32_hc_prenorm_gemm(const TensorMap* a_map, const TensorMap* b_map,
                                                     const HcArgs& args) {
    using Layout = HcLayout<kN, kStages>;
    extern __shared__ __align__(1024) unsigned char smem[];
    uint64_t* full = reinterpret_cast<uint64_t*>(smem + kStages * Layout::kStageBytes);
    uint64_t* empty = full + kStages;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

    if (threadIdx.x == 128) {
        for (int s = 0; s < kStages; ++s) {
            ptx::mbarrier_init(full + s, 1);
            ptx::mbarrier_init(empty + s, 4);  // one arrival per math warp
        }
        ptx::fence_barrier_init();
    }
    __syncthreads();

    const int m_block = blockIdx.x / args.splits, split = blockIdx.x % args.splits;
    const int k_blocks = (args.k + kBlockK - 1) / kBlockK;
    const int first = static_cast<int>(static_cast<long long>(split) * k_blocks / args.splits);
    const int last = static_cast<int>(static_cast<long long>(split + 1) * k_blocks / args.splits);
    const int steps = last - first;

    if (warp == 4) {
        if (lane != 0) return;
        for (int t = 0; t < steps; ++t) {
            const int s = t % kStages;
            ptx::mbarrier_wait(empty + s, ((t / kStages) & 1) ^ 1);
            unsigned char* stage = smem + s * Layout::kStageBytes;
            const int k0 = (first + t) * kBlockK;
            ptx::mbarrier_arrive_expect_tx(full + s, Layout::kStageBytes);
            ptx::tma_load_2d(stage, a_map, full + s, k0, m_block * kBlockM);
            ptx::tma_load_2d(stage + Layout::kABytes, b_map, full + s, k0, 0);
            ptx::tma_load_2d(stage + Layout::kABytes + Layout::kBHalfBytes, b_map, full + s, k0 + kHalfK, 0);
        }
        return;
    }

    // Rows r and r + 8 of the tile (r = 16 warp + lane / 4); columns c and c + 4 of each 8-column step.
    const int r = warp * 16 + lane / 4, c = lane % 4;
    float acc[kN / 2];
#pragma unroll
    for (int i = 0; i < kN / 2; ++i) acc[i] = 0.0f;
    float squares[2] = {0.0f, 0.0f};
    for (int t = 0; t < steps; ++t) {
        const int s = t % kStages;
        ptx::mbarrier_wait(full + s, (t / kStages) & 1);
        const unsigned char* stage = smem + s * Layout::kStageBytes;
        float a[kBlockK / 8][4];
#pragma unroll
        for (int j = 0; j < kBlockK / 8; ++j) {
            // 16-byte chunk j of row r sits at chunk j ^ (r % 8) (rows r and r + 8 alike).
            const unsigned char* chunk = stage + ((j ^ (r % 8)) * 16) + c * 2;
            const __nv_bfloat16* upper = reinterpret_cast<const __nv_bfloat16*>(chunk + r * 128);
            const __nv_bfloat16* lower = reinterpret_cast<const __nv_bfloat16*>(chunk + (r + 8) * 128);
            a[j][0] = __bfloat162float(upper[0]);
            a[j][1] = __bfloat162float(lower[0]);
            a[j][2] = __bfloat162float(upper[4]);
            a[j][3] = __bfloat162float(lower[4]);
            squares[0] = fmaf(a[j][0], a[j][0], fmaf(a[j][2], a[j][2], squares[0]));
            squares[1] = fmaf(a[j][1], a[j][1], fmaf(a[j][3], a[j][3], squares[1]));
        }
#pragma unroll
        for (int i = 0; i < kN / 2; ++i) ptx::fence_operand(acc[i]);
        ptx::wgmma_fence();
#pragma unroll
        for (int j = 0; j < kBlockK / 8; ++j) {
            const unsigned char* half = stage + Layout::kABytes + (j / 4) * Layout::kBHalfBytes;
            TF32MMA<kN>::run(a[j], ptx::SmemDescriptor::sw128(half).at((j % 4) * 2), acc);
        }
        ptx::wgmma_commit();
        ptx::wgmma_wait<0>();
#pragma unroll
        for (int i = 0; i < kN / 2; ++i) ptx::fence_operand(acc[i]);
        __syncwarp();
        if (lane == 0) ptx::mbarrier_arrive(empty + s);
    }

    // The quad's four lanes hold the row's 8-column steps' four column pairs.
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        squares[h] += __shfl_xor_sync(0xffffffffu, squares[h], 1);
        squares[h] += __shfl_xor_sync(0xffffffffu, squares[h], 2);
    }
    const int row0 = m_block * kBlockM + r;
    float* d = args.d + static_cast<long long>(split) * args.m * args.n;
    float* sqr_sum = args.sqr_sum + static_cast<long long>(split) * args.m;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int row = row0 + 8 * h;
        if (row >= args.m) continue;
        if (c == 0) sqr_sum[row] = squares[h];
#pragma unroll
        for (int i = 0; i < kN / 8; ++i) {
            const int col = 8 * i + 2 * c;
            float* out = d + static_cast<long long>(row) * args.n + col;
            if (col < args.n) out[0] = acc[4 * i + 2 * h];
            if (col + 1 < args.n) out[1] = acc[4 * i + 2 * h + 1];
        }
    }
}

// Output split s (of `outputs`: D [outputs, M, N], S [outputs, M]) = the sum of the
// kernel's splits s * per_output ... + per_output - 1, in order; one thread per output.
__device__ __forceinline__ void hc_reduce_splits(const float* partial_d, const float* partial_s, float* d,
                                                 float* sqr_sum, int m, int n, int outputs, int per_output) {
    const long long index = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
    const long long d_count = static_cast<long long>(m) * n, d_total = d_count * outputs;
    if (index < d_total) {
        const long long split = index / d_count, offset = index - split * d_count;
        const float* from = partial_d + split * per_output * d_count + offset;
        float sum = 0.0f;
#pragma unroll 8  // eight loads in flight, not one L2 round trip per partial (same order of adds)
        for (int s = 0; s < per_output; ++s) sum += from[s * d_count];
        d[index] = sum;
    } else if (index < d_total + static_cast<long long>(m) * outputs) {
        const long long row_index = index - d_total, split = row_index / m, row = row_index - split * m;
        const float* from = partial_s + split * per_output * m + row;
        float sum = 0.0f;
#pragma unroll 8
        for (int s = 0; s < per_output; ++s) sum += from[s * m];
        sqr_sum[row_index] = sum;
    }
}

}  // namespace deep_gemm::hc
