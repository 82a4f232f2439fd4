// einsum's bf16 kernels, one tile mainloop (128 x 128 tiles, K-major A and B):
//   * 'bmk,bnk->mn': D[m, n] += sum over the batch of A[b] @ B[b]^T for bf16 A
//     [S, m, k], B [S, n, k] and fp32 D, as one GEMM whose K runs over (batch, k);
//   * per-head GEMMs ('bhr,hdr->bhd'; 'bhd,hdr->bhr', whose B is MN-major, runs cuBLAS):
//     D[:, h] = A[:, h] @ B[h]^T through strided TMA views, bf16 D.
//
// 'bmk,bnk->mn':
// A CTA computes one 128 x 128 tile of D over a range of batches (split `split` of
// `splits`: batches [split * S / splits, (split + 1) * S / splits)) and adds it into
// D with fp32 reductions. CTAs are numbered tile-fastest, so the CTAs of one batch
// range run together and each batch's A and B panels come from DRAM about once
// (the other tiles hit L2). Two math warpgroups (64 rows each) and one producer warp,
// which streams 64-column K-blocks of A's and B's tile rows with TMA (A viewed as
// [S * m, k]: rows past m belong to the next batch and only reach rows of D that are
// not stored; past k, TMA reads zeros).
#pragma once

#include <cuda_bf16.h>

#include <deep_gemm/ptx.cuh>
#include <deep_gemm/wgmma.cuh>

namespace deep_gemm::einsum {

constexpr int kBlockM = 128;
constexpr int kBlockN = 128;
constexpr int kBlockK = 64;  // bf16: one 128-byte swizzled row
constexpr int kMathThreads = 256;

struct BmkArgs {
    float* d;  // [m, n], accumulated into
    int batch, m, n, k;
    int n_tiles, tiles, splits;
};

template <int kStages>
struct BmkLayout {
    static constexpr int kABytes = kBlockM * kBlockK * 2;
    static constexpr int kBBytes = kBlockN * kBlockK * 2;
    static constexpr int kStageBytes = kABytes + kBBytes;
    static constexpr int kBytes = kStages * kStageBytes + 2 * kStages * 8;
};

// The shared mainloop: 128 x 128 fp32 accumulators over `steps` 64-column K-blocks,
// coordinates(t, a_inner, a_outer, b_inner, b_outer) placing step t's TMA boxes
// (128 rows x 64 columns of A and of B, 128-byte swizzle). 288 threads: two math
// warpgroups, then the producer warp. Returns true in the math threads, whose acc
// then holds rows 64 (warp / 4) ... + 63 of the tile.
template <int kStages, typename Coordinates>
__device__ __forceinline__ bool tile_mainloop(const TensorMap* a_map, const TensorMap* b_map, int steps,
                                              const Coordinates& coordinates, float* acc) {
    using Layout = BmkLayout<kStages>;
    constexpr int kMathWarps = kMathThreads / 32;
    extern __shared__ __align__(1024) unsigned char smem[];
    uint64_t* full = reinterpret_cast<uint64_t*>(smem + kStages * Layout::kStageBytes);
    uint64_t* empty = full + kStages;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

    if (threadIdx.x == kMathThreads) {
        for (int s = 0; s < kStages; ++s) {
            ptx::mbarrier_init(full + s, 1);
            ptx::mbarrier_init(empty + s, kMathWarps);
        }
        ptx::fence_barrier_init();
    }
    __syncthreads();

    if (warp == kMathWarps) {
        if (lane != 0) return false;
        for (int t = 0; t < steps; ++t) {
            const int s = t % kStages;
            int a_inner, a_outer, b_inner, b_outer;
            coordinates(t, a_inner, a_outer, b_inner, b_outer);
            ptx::mbarrier_wait(empty + s, ((t / kStages) & 1) ^ 1);
            unsigned char* stage = smem + s * Layout::kStageBytes;
            ptx::mbarrier_arrive_expect_tx(full + s, Layout::kStageBytes);
            ptx::tma_load_2d(stage, a_map, full + s, a_inner, a_outer);
            ptx::tma_load_2d(stage + Layout::kABytes, b_map, full + s, b_inner, b_outer);
        }
        return false;
    }

    const int group = warp / 4;
#pragma unroll
    for (int i = 0; i < kBlockN / 2; ++i) acc[i] = 0.0f;
    for (int t = 0; t < steps; ++t) {
        const int s = t % kStages;
        ptx::mbarrier_wait(full + s, (t / kStages) & 1);
        const unsigned char* stage = smem + s * Layout::kStageBytes;
        const ptx::SmemDescriptor a = ptx::SmemDescriptor::sw128(stage + group * 64 * 128);
        const ptx::SmemDescriptor b = ptx::SmemDescriptor::sw128(stage + Layout::kABytes);
#pragma unroll
        for (int i = 0; i < kBlockN / 2; ++i) ptx::fence_operand(acc[i]);
        ptx::wgmma_fence();
#pragma unroll
        for (int k = 0; k < kBlockK / 16; ++k) wgmma::BF16MMA<kBlockN>::run(a.at(k * 2), b.at(k * 2), acc, true);
        ptx::wgmma_commit();
        ptx::wgmma_wait<0>();
#pragma unroll
        for (int i = 0; i < kBlockN / 2; ++i) ptx::fence_operand(acc[i]);
        __syncwarp();
        if (lane == 0) ptx::mbarrier_arrive(empty + s);
    }
    return true;
}

// Calls store(row, col, value) for each accumulator of the math thread: accumulator
// i / 4 covers columns 8 (i / 4) + 2 (lane % 4) + {0, 1} of rows lane / 4 (+ 8 for the
// second pair) of its warp's 16.
template <typename Store>
__device__ __forceinline__ void for_each_accumulator(const float* acc, const Store& store) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int row0 = (warp / 4) * 64 + (warp % 4) * 16 + lane / 4, col0 = 2 * (lane % 4);
#pragma unroll
    for (int i = 0; i < kBlockN / 8; ++i)
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
            for (int j = 0; j < 2; ++j) store(row0 + 8 * h, col0 + 8 * i + j, acc[4 * i + 2 * h + j]);
}

// a_map: bf16 [S * m, k], b_map: bf16 [S * n, k].
template <int kStages>
__device__ __forceinline__ void bmk_bnk_mn(const TensorMap* a_map, const TensorMap* b_map, const BmkArgs& args) {
    const int tile = blockIdx.x % args.tiles, split = blockIdx.x / args.tiles;
    const int m0 = tile / args.n_tiles * kBlockM, n0 = tile % args.n_tiles * kBlockN;
    const int first_batch = static_cast<int>(static_cast<long long>(split) * args.batch / args.splits);
    const int end_batch = static_cast<int>(static_cast<long long>(split + 1) * args.batch / args.splits);
    const int k_blocks = (args.k + kBlockK - 1) / kBlockK;
    const auto coordinates = [&](int t, int& a_inner, int& a_outer, int& b_inner, int& b_outer) {
        const int b = first_batch + t / k_blocks;
        a_inner = b_inner = (t % k_blocks) * kBlockK;
        a_outer = b * args.m + m0;
        b_outer = b * args.n + n0;
    };
    float acc[kBlockN / 2];
    const int steps = (end_batch - first_batch) * k_blocks;
    if (steps == 0 || !tile_mainloop<kStages>(a_map, b_map, steps, coordinates, acc)) return;
    for_each_accumulator(acc, [&](int row, int col, float value) {
        if (m0 + row < args.m && n0 + col < args.n)
            atomicAdd(args.d + static_cast<long long>(m0 + row) * args.n + n0 + col, value);
    });
}

// Per head h: D[i, h, j] = sum_k A[i, h, k] B[h, j, k] for bf16 A [rows, H, K] and
// B [H, N, K] (K a multiple of 64, so no box reaches into the next head), bf16 D.
struct PerHeadArgs {
    __nv_bfloat16* d;  // [rows, H, N]: row i, head h at i * d_stride + h * N
    long long d_stride;
    int rows, heads, n, k;
    int m_tiles, n_tiles;
};

// a_map: bf16 [rows, H * K]; b_map: bf16 [H * N, K] (B's row stride). CTAs: heads x m_tiles x n_tiles.
template <int kStages>
__device__ __forceinline__ void per_head_gemm(const TensorMap* a_map, const TensorMap* b_map, const PerHeadArgs& args) {
    const int n_tile = blockIdx.x % args.n_tiles;
    const int m_tile = (blockIdx.x / args.n_tiles) % args.m_tiles;
    const int head = blockIdx.x / (args.n_tiles * args.m_tiles);
    const int m0 = m_tile * kBlockM, n0 = n_tile * kBlockN;
    const auto coordinates = [&](int t, int& a_inner, int& a_outer, int& b_inner, int& b_outer) {
        b_inner = t * kBlockK;
        a_inner = head * args.k + b_inner;
        a_outer = m0;
        b_outer = head * args.n + n0;
    };
    float acc[kBlockN / 2];
    if (!tile_mainloop<kStages>(a_map, b_map, args.k / kBlockK, coordinates, acc)) return;
    for_each_accumulator(acc, [&](int row, int col, float value) {
        if (m0 + row < args.rows && n0 + col < args.n)
            args.d[(m0 + row) * args.d_stride + static_cast<long long>(head) * args.n + n0 + col] =
                __float2bfloat16_rn(value);
    });
}

}  // namespace deep_gemm::einsum
