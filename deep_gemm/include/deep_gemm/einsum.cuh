// einsum's bf16 kernels, one tile mainloop (128 x 128 tiles, K-major A, B K-major or
// MN-major):
//   * 'bmk,bnk->mn': D[m, n] += sum over the batch of A[b] @ B[b]^T for bf16 A
//     [S, m, k], B [S, n, k] and fp32 D, as one GEMM whose K runs over (batch, k);
//   * per-head GEMMs through strided TMA views, bf16 D: D[:, h] = A[:, h] @ B[h]^T
//     ('bhr,hdr->bhd', B[h] [N, K]) or A[:, h] @ B[h] ('bhd,hdr->bhr', B[h] [K, N]).
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

#include <deep_gemm/epilogue.cuh>
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
// (128-byte swizzle): 128 rows x 64 columns of A; of K-major B likewise, of MN-major
// B (kMnMajorB) `b_boxes` boxes of 64 K-rows x 64 N-columns at b_inner, b_inner + 64
// (8 KiB apart; a second box wholly past N is not loaded: it only reaches columns of
// D that are not stored). 288 threads: two math warpgroups, then the producer warp.
// Returns true in the math threads, whose acc then holds rows 64 (warp / 4) ... + 63
// of the tile.
template <int kStages, bool kMnMajorB, typename Coordinates>
__device__ __forceinline__ bool tile_mainloop(const TensorMap* a_map, const TensorMap* b_map, int steps,
                                              const Coordinates& coordinates, float* acc, int b_boxes = 2) {
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
        constexpr int kBoxBytes = Layout::kBBytes / 2;
        const int stage_bytes = kMnMajorB ? Layout::kABytes + b_boxes * kBoxBytes : Layout::kStageBytes;
        for (int t = 0; t < steps; ++t) {
            const int s = t % kStages;
            int a_inner, a_outer, b_inner, b_outer;
            coordinates(t, a_inner, a_outer, b_inner, b_outer);
            ptx::mbarrier_wait(empty + s, ((t / kStages) & 1) ^ 1);
            unsigned char* stage = smem + s * Layout::kStageBytes;
            ptx::mbarrier_arrive_expect_tx(full + s, stage_bytes);
            ptx::tma_load_2d(stage, a_map, full + s, a_inner, a_outer);
            if constexpr (kMnMajorB) {
                for (int j = 0; j < b_boxes; ++j)
                    ptx::tma_load_2d(stage + Layout::kABytes + j * kBoxBytes, b_map, full + s, b_inner + 64 * j,
                                     b_outer);
            } else {
                ptx::tma_load_2d(stage + Layout::kABytes, b_map, full + s, b_inner, b_outer);
            }
        }
        return false;
    }

    const int group = warp / 4;
    // MN-major B: 64-column atoms one box (8 KiB) apart; a k16 step is 16 K-rows
    // (2048 bytes) on, where K-major B's is 32 bytes along its rows.
    constexpr int kBStep = kMnMajorB ? 16 * 128 / 16 : 2;  // 16-byte units
#pragma unroll
    for (int i = 0; i < kBlockN / 2; ++i) acc[i] = 0.0f;
    // Step t's MMAs are issued before step t - 1's are waited for (one group in
    // flight), whose stage is then handed back to the producer.
    for (int t = 0; t < steps; ++t) {
        const int s = t % kStages;
        ptx::mbarrier_wait(full + s, (t / kStages) & 1);
        const unsigned char* stage = smem + s * Layout::kStageBytes;
        const ptx::SmemDescriptor a = ptx::SmemDescriptor::sw128(stage + group * 64 * 128);
        const ptx::SmemDescriptor b = kMnMajorB
                                          ? ptx::SmemDescriptor::sw128_mn(stage + Layout::kABytes, Layout::kBBytes / 2)
                                          : ptx::SmemDescriptor::sw128(stage + Layout::kABytes);
#pragma unroll
        for (int i = 0; i < kBlockN / 2; ++i) ptx::fence_operand(acc[i]);
        ptx::wgmma_fence();
#pragma unroll
        for (int k = 0; k < kBlockK / 16; ++k)
            wgmma::BF16MMA<kBlockN, false, kMnMajorB>::run(a.at(k * 2), b.at(k * kBStep), acc, true);
        ptx::wgmma_commit();
        ptx::wgmma_wait<1>();
#pragma unroll
        for (int i = 0; i < kBlockN / 2; ++i) ptx::fence_operand(acc[i]);
        __syncwarp();
        if (t > 0 && lane == 0) ptx::mbarrier_arrive(empty + (t - 1) % kStages);
    }
    ptx::wgmma_wait<0>();
#pragma unroll
    for (int i = 0; i < kBlockN / 2; ++i) ptx::fence_operand(acc[i]);
    return true;
}

// Calls store(row, col, v0, v1) for each pair of accumulators of the math thread
// (columns col and col + 1): accumulators 4 (i / 4) + {0, 1} cover columns
// 8 (i / 4) + 2 (lane % 4) + {0, 1} of row lane / 4 of its warp's 16, the next two
// the same columns of row lane / 4 + 8.
template <typename Store>
__device__ __forceinline__ void for_each_accumulator_pair(const float* acc, const Store& store) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int row0 = (warp / 4) * 64 + (warp % 4) * 16 + lane / 4, col0 = 2 * (lane % 4);
#pragma unroll
    for (int i = 0; i < kBlockN / 8; ++i)
#pragma unroll
        for (int h = 0; h < 2; ++h) store(row0 + 8 * h, col0 + 8 * i, acc[4 * i + 2 * h], acc[4 * i + 2 * h + 1]);
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
    if (steps == 0 || !tile_mainloop<kStages, false>(a_map, b_map, steps, coordinates, acc)) return;
    // Each split adds its tile to D: two columns in one vector atomic (half the L2
    // atomic operations) where the pair is 8-byte aligned, i.e. N even and D so.
    const bool paired = args.n % 2 == 0 && reinterpret_cast<unsigned long long>(args.d) % 8 == 0;
    for_each_accumulator_pair(acc, [&](int row, int col, float v0, float v1) {
        if (m0 + row >= args.m) return;
        float* d = args.d + static_cast<long long>(m0 + row) * args.n + n0 + col;
        if (paired && n0 + col + 1 < args.n) {
            atomicAdd(reinterpret_cast<float2*>(d), make_float2(v0, v1));
            return;
        }
        if (n0 + col < args.n) atomicAdd(d, v0);
        if (n0 + col + 1 < args.n) atomicAdd(d + 1, v1);
    });
}

// Per head h: D[i, h, j] = sum_k A[i, h, k] B[h, j, k] (K-major B [H, N, K]) or
// sum_k A[i, h, k] B[h, k, j] (MN-major B [H, K, N]) for bf16 A [rows, H, K], bf16 D;
// K a multiple of 64, so no box reaches into the next head.
struct PerHeadArgs {
    __nv_bfloat16* d;  // [rows, H, N]: row i, head h at i * d_stride + h * N
    long long d_stride;
    int rows, heads, n, k;
    int m_tiles, n_tiles;
    int tma_store;  // D through d_map (its strides multiples of 16 bytes), else register stores
};

// A math warpgroup's 64 x 128 bf16 tile goes to shared memory as two 64-column chunks
// (stage_chunk, epilogue.cuh) and one thread stores them with TMA through d_map [rows, H, N] (box 64 columns x 1 head x 64 rows), which clips at the
// head's N and at the rows. The buffers are the warpgroup's own A rows of stages 0
// and 1: after its last MMA no load or other warpgroup touches them.
template <int kStages>
__device__ __forceinline__ void store_tile_tma(const TensorMap* d_map, const float* acc, int head, int m0, int n0,
                                               const PerHeadArgs& args) {
    static_assert(kStages >= 2, "the two staging buffers take two stages' A rows");
    extern __shared__ __align__(1024) unsigned char smem[];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, group = warp / 4;
    const int row0 = m0 + group * 64;
    if (row0 >= args.rows) return;  // uniform per warpgroup
    const int chunks = n0 + 64 < args.n ? 2 : 1;
    unsigned char* buffers = smem + group * 64 * 128;  // chunk c's in stage c
    stage_chunk<__nv_bfloat16, 0>(buffers, acc, warp % 4, lane);
    if (chunks == 2) stage_chunk<__nv_bfloat16, 1>(buffers + BmkLayout<kStages>::kStageBytes, acc, warp % 4, lane);
    ptx::fence_proxy_async();
    ptx::named_barrier(1 + group, 128);
    if (threadIdx.x % 128 == 0) {
        for (int chunk = 0; chunk < chunks; ++chunk)
            ptx::tma_store_3d(d_map, buffers + chunk * BmkLayout<kStages>::kStageBytes, n0 + chunk * 64, head, row0);
        ptx::tma_store_commit();
        ptx::tma_store_wait_read<0>();  // the CTA's shared memory outlives the reads
    }
}

// a_map: bf16 [rows, H * K]; b_map: bf16 [H * N, K] (K-major) or [H * K, N]
// (MN-major), rows B's row stride apart; d_map as store_tile_tma's (unused without
// args.tma_store). CTAs: heads x m_tiles x n_tiles.
template <int kStages, bool kMnMajorB>
__device__ __forceinline__ void per_head_gemm(const TensorMap* a_map, const TensorMap* b_map, const TensorMap* d_map,
                                              const PerHeadArgs& args) {
    const int n_tile = blockIdx.x % args.n_tiles;
    const int m_tile = (blockIdx.x / args.n_tiles) % args.m_tiles;
    const int head = blockIdx.x / (args.n_tiles * args.m_tiles);
    const int m0 = m_tile * kBlockM, n0 = n_tile * kBlockN;
    const auto coordinates = [&](int t, int& a_inner, int& a_outer, int& b_inner, int& b_outer) {
        a_inner = head * args.k + t * kBlockK;
        a_outer = m0;
        b_inner = kMnMajorB ? n0 : t * kBlockK;
        b_outer = kMnMajorB ? head * args.k + t * kBlockK : head * args.n + n0;
    };
    float acc[kBlockN / 2];
    const int b_boxes = n0 + 64 < args.n ? 2 : 1;
    if (!tile_mainloop<kStages, kMnMajorB>(a_map, b_map, args.k / kBlockK, coordinates, acc, b_boxes)) return;
    if (args.tma_store) {
        store_tile_tma<kStages>(d_map, acc, head, m0, n0, args);
        return;
    }
    // Packed D whose strides TMA cannot take (N not a multiple of 8). Column pairs as
    // one 4-byte store where N is even (every pair then aligned).
    const bool paired = args.n % 2 == 0;
    for_each_accumulator_pair(acc, [&](int row, int col, float v0, float v1) {
        if (m0 + row >= args.rows || n0 + col >= args.n) return;
        __nv_bfloat16* d = args.d + (m0 + row) * args.d_stride + static_cast<long long>(head) * args.n + n0 + col;
        if (paired) {
            *reinterpret_cast<__nv_bfloat162*>(d) = __floats2bfloat162_rn(v0, v1);
        } else {
            d[0] = __float2bfloat16_rn(v0);
            if (n0 + col + 1 < args.n) d[1] = __float2bfloat16_rn(v1);
        }
    });
}

}  // namespace deep_gemm::einsum
