// FP8 GEMM, "NT" layout: D[M,N] = A[M,K] @ B[N,K]^T (+ C), e4m3 inputs with
// DeepGEMM's block scales: A per 1x128 (row, K-block), B per 128x128 block.
//
// Persistent: one CTA per SM walks the BLOCK_M x BLOCK_N tiles of D
// (tile_of_block's order, stepping by the grid size):
//   * the last warpgroup is the producer: one thread streams K-blocks of A, B and
//     A's scales into a ring of shared-memory stages with TMA, running ahead into
//     the next tile while the math warpgroups store the current one;
//   * the other warpgroups (one per 64 rows) run fp8 WGMMAs over each K-block into
//     a temporary accumulator, then fold it into the FP32 result multiplied by the
//     two block scales ("promotion"): fp8 products never accumulate across blocks.
// Stages hand over through two mbarriers each: `full` (TMA bytes landed) and
// `empty` (every math warp is done reading). The ring position runs on across
// tiles, so both sides derive stage and phase from one running K-block count.
#pragma once

#include <cuda_bf16.h>

#include <deep_gemm/ptx.cuh>
#include <deep_gemm/wgmma.cuh>

namespace deep_gemm {

constexpr int kBlockK = 128;  // one scale block along K; also one 128B-swizzle row of fp8

template <typename T>
__device__ __forceinline__ T ceil_div(T a, T b) { return (a + b - 1) / b; }

// Tile order: walk groups of kGroupM tile-rows column by column, so the CTAs in
// flight share a few A row-panels and B column-panels in L2.
__device__ __forceinline__ void tile_of_block(int block, int m_tiles, int n_tiles, int& m_tile, int& n_tile) {
    constexpr int kGroupM = 8;
    const int group_span = kGroupM * n_tiles;
    const int first_m = (block / group_span) * kGroupM;
    const int group_rows = min(kGroupM, m_tiles - first_m);
    const int in_group = block % group_span;
    m_tile = first_m + in_group % group_rows;
    n_tile = in_group / group_rows;
}

__device__ __forceinline__ void store_pair(__nv_bfloat16* d, const float*, size_t offset, bool both, bool paired,
                                           float v0, float v1) {
    if (both && paired) {
        *reinterpret_cast<__nv_bfloat162*>(d + offset) = __floats2bfloat162_rn(v0, v1);
    } else {
        d[offset] = __float2bfloat16_rn(v0);
        if (both) d[offset + 1] = __float2bfloat16_rn(v1);
    }
}

// FP32 output, optionally D = acc + C (C may alias D).
__device__ __forceinline__ void store_pair(float* d, const float* c, size_t offset, bool both, bool paired,
                                           float v0, float v1) {
    if (c != nullptr) {
        v0 += c[offset];
        if (both) v1 += c[offset + 1];
    }
    if (both && paired) {
        *reinterpret_cast<float2*>(d + offset) = make_float2(v0, v1);
    } else {
        d[offset] = v0;
        if (both) d[offset + 1] = v1;
    }
}

template <int kBlockM, int kBlockN, int kStages>
struct FP8GemmLayout {
    static constexpr int kMathWarpgroups = kBlockM / 64;
    static constexpr int kThreads = 128 * (kMathWarpgroups + 1);
    static constexpr int kABytes = kBlockM * kBlockK;
    static constexpr int kBBytes = kBlockN * kBlockK;
    static constexpr int kSfaBytes = kBlockM * static_cast<int>(sizeof(float));
    static constexpr int kStageBytes = kABytes + kBBytes + kSfaBytes;
    // A tiles, then B tiles (each 1024-byte aligned for the swizzle), then A's
    // scales, then the full/empty barriers. csrc/jit_kernels/fp8_gemm.cpp mirrors this.
    static constexpr int kSharedBytes = kStages * kStageBytes + kStages * 2 * 8;

    static_assert(kBlockM == 64 || kBlockM == 128, "BLOCK_M is one or two math warpgroups");
    static_assert(kBlockN % 16 == 0 && kBlockN <= 256, "BLOCK_N must be a wgmma N size");
};

template <int kBlockM, int kBlockN, int kStages, typename OutT>
__device__ __forceinline__ void fp8_gemm_nt(const TensorMap& tmap_a, const TensorMap& tmap_b,
                                            const TensorMap& tmap_sfa, const float* __restrict__ sfb,
                                            OutT* d, const float* c, int m, int n, int k) {
    using Layout = FP8GemmLayout<kBlockM, kBlockN, kStages>;
    using MMA = wgmma::FP8MMA<kBlockN>;
    // When BLOCK_N divides 128 a tile never straddles two B scale blocks.
    constexpr bool kUniformScaleB = 128 % kBlockN == 0;

    extern __shared__ __align__(1024) unsigned char smem[];
    unsigned char* smem_a = smem;
    unsigned char* smem_b = smem_a + kStages * Layout::kABytes;
    float* smem_sfa = reinterpret_cast<float*>(smem_b + kStages * Layout::kBBytes);
    uint64_t* full = reinterpret_cast<uint64_t*>(smem_sfa + kStages * kBlockM);
    uint64_t* empty = full + kStages;

    const int warpgroup = threadIdx.x / 128;
    const int k_blocks = k / kBlockK;
    const int m_tiles = ceil_div(m, kBlockM);
    const int n_tiles = ceil_div(n, kBlockN);
    const int num_tiles = m_tiles * n_tiles;

    if (threadIdx.x == 0) {
        ptx::tma_prefetch_descriptor(&tmap_a);
        ptx::tma_prefetch_descriptor(&tmap_b);
        ptx::tma_prefetch_descriptor(&tmap_sfa);
        for (int s = 0; s < kStages; ++s) {
            ptx::mbarrier_init(&full[s], 1);
            ptx::mbarrier_init(&empty[s], Layout::kMathWarpgroups * 4);
        }
        ptx::fence_barrier_init();
    }
    __syncthreads();

    if (warpgroup == Layout::kMathWarpgroups) {
        // Producer: give registers to the math warpgroups; one thread issues TMA.
        ptx::regs_dealloc<40>();
        if (threadIdx.x == Layout::kMathWarpgroups * 128) {
            int iter = 0;  // K-blocks issued so far, over all tiles
            for (int tile = blockIdx.x; tile < num_tiles; tile += gridDim.x) {
                int m_tile, n_tile;
                tile_of_block(tile, m_tiles, n_tiles, m_tile, n_tile);
                for (int kb = 0; kb < k_blocks; ++kb, ++iter) {
                    const int s = iter % kStages;
                    // Parity trick: the first pass over the ring finds every slot free.
                    ptx::mbarrier_wait(&empty[s], ((iter / kStages) & 1) ^ 1);
                    ptx::mbarrier_arrive_expect_tx(&full[s], Layout::kStageBytes);
                    ptx::tma_load_2d(smem_a + s * Layout::kABytes, &tmap_a, &full[s], kb * kBlockK, m_tile * kBlockM);
                    ptx::tma_load_2d(smem_b + s * Layout::kBBytes, &tmap_b, &full[s], kb * kBlockK, n_tile * kBlockN);
                    ptx::tma_load_2d(smem_sfa + s * kBlockM, &tmap_sfa, &full[s], m_tile * kBlockM, kb);
                }
            }
        }
        return;
    }

    ptx::regs_alloc<232>();
    const int lane = threadIdx.x % 32;
    const int warp = (threadIdx.x / 32) % 4;
    // wgmma m64nN accumulator layout: this thread owns rows r and r + 8 of its
    // warpgroup's 64, and column pairs (8 * i + 2 * (lane % 4), +1) for each i.
    const int row_in_tile = warpgroup * 64 + warp * 16 + lane / 4;
    const int sfb_last = ceil_div(n, 128) - 1;
    const bool paired = n % 2 == 0;  // row starts keep 2-element alignment

    int iter = 0;
    for (int tile = blockIdx.x; tile < num_tiles; tile += gridDim.x) {
        int m_tile, n_tile;
        tile_of_block(tile, m_tiles, n_tiles, m_tile, n_tile);
        const int n0 = n_tile * kBlockN;
        const float* sfb_row = sfb + static_cast<size_t>(n0 / 128) * k_blocks;

        float accum[MMA::kAccumulators];
        float partial[MMA::kAccumulators];
#pragma unroll
        for (int i = 0; i < MMA::kAccumulators; ++i) accum[i] = 0.0f;

        for (int kb = 0; kb < k_blocks; ++kb, ++iter) {
            const int s = iter % kStages;
            // B's scales for this K-block: up to three 128-column blocks under one tile.
            const float sb0 = __ldg(sfb_row + kb);
            float sb1 = sb0, sb2 = sb0;
            if constexpr (!kUniformScaleB) {
                sb1 = __ldg(sfb + static_cast<size_t>(min(n0 / 128 + 1, sfb_last)) * k_blocks + kb);
                sb2 = __ldg(sfb + static_cast<size_t>(min(n0 / 128 + 2, sfb_last)) * k_blocks + kb);
            }

            ptx::mbarrier_wait(&full[s], (iter / kStages) & 1);
            const float sa0 = smem_sfa[s * kBlockM + row_in_tile];
            const float sa1 = smem_sfa[s * kBlockM + row_in_tile + 8];

            const uint64_t desc_a =
                ptx::smem_descriptor_sw128(smem_a + s * Layout::kABytes + warpgroup * 64 * kBlockK);
            const uint64_t desc_b = ptx::smem_descriptor_sw128(smem_b + s * Layout::kBBytes);
#pragma unroll
            for (int i = 0; i < MMA::kAccumulators; ++i) ptx::fence_operand(partial[i]);
            ptx::wgmma_fence();
#pragma unroll
            for (int kk = 0; kk < kBlockK / 32; ++kk) {
                // 32 fp8 = 32 bytes further along K inside the swizzled row: +2 in 16-byte units.
                MMA::run(desc_a + kk * 2, desc_b + kk * 2, partial, kk > 0);
            }
            ptx::wgmma_commit();
            ptx::wgmma_wait<0>();
#pragma unroll
            for (int i = 0; i < MMA::kAccumulators; ++i) ptx::fence_operand(partial[i]);
            // The MMAs and this warp's scale reads are done with the stage.
            __syncwarp();
            if (lane == 0) ptx::mbarrier_arrive(&empty[s]);

#pragma unroll
            for (int i = 0; i < kBlockN / 8; ++i) {
                float scale_b = sb0;
                if constexpr (!kUniformScaleB) {
                    // Selects, not an indexed array: a run-time index would put it in local memory.
                    const int block = (n0 % 128 + i * 8) / 128;
                    scale_b = block == 0 ? sb0 : block == 1 ? sb1 : sb2;
                }
                const float s0 = sa0 * scale_b, s1 = sa1 * scale_b;
                accum[i * 4 + 0] += partial[i * 4 + 0] * s0;
                accum[i * 4 + 1] += partial[i * 4 + 1] * s0;
                accum[i * 4 + 2] += partial[i * 4 + 2] * s1;
                accum[i * 4 + 3] += partial[i * 4 + 3] * s1;
            }
        }

        // Epilogue straight from registers; rows >= M and columns >= N are skipped.
        const int row0 = m_tile * kBlockM + row_in_tile;
#pragma unroll
        for (int i = 0; i < kBlockN / 8; ++i) {
            const int col = n0 + i * 8 + (lane % 4) * 2;
            if (col >= n) continue;
#pragma unroll
            for (int half = 0; half < 2; ++half) {
                const int row = row0 + half * 8;
                if (row >= m) continue;
                const size_t offset = static_cast<size_t>(row) * n + col;
                store_pair(d, c, offset, col + 1 < n, paired, accum[i * 4 + half * 2], accum[i * 4 + half * 2 + 1]);
            }
        }
    }
}

}  // namespace deep_gemm
