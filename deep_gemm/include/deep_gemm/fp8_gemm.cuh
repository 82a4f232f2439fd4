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

template <int kBlockM, int kBlockN, int kStages, bool kTmaStore>
struct FP8GemmLayout {
    static constexpr int kMathWarpgroups = kBlockM / 64;
    static constexpr int kMathWarps = kMathWarpgroups * 4;
    static constexpr int kThreads = 128 * (kMathWarpgroups + 1);
    static constexpr int kABytes = kBlockM * kBlockK;
    static constexpr int kBBytes = kBlockN * kBlockK;
    static constexpr int kSfaBytes = kBlockM * static_cast<int>(sizeof(float));
    static constexpr int kStageBytes = kABytes + kBBytes + kSfaBytes;
    // The bf16 output tile staged for the TMA store, in 64-column chunks.
    static constexpr int kDBytes = kTmaStore ? kBlockM * kBlockN * 2 : 0;
    // D's staging tile, A tiles, B tiles (each 1024-byte aligned for the swizzle),
    // A's scales, the full/empty barriers. csrc/jit_kernels/fp8_gemm.cpp mirrors this.
    static constexpr int kSharedBytes = kDBytes + kStages * kStageBytes + kStages * 2 * 8;
    static_assert(!kTmaStore || kBlockN % 64 == 0, "the TMA store writes 64-column (128-byte) chunks");

    static_assert(kBlockM == 64 || kBlockM == 128, "BLOCK_M is one or two math warpgroups");
    static_assert(kBlockN % 16 == 0 && kBlockN <= 256, "BLOCK_N must be a wgmma N size");
};

// The bf16 tile of one math warpgroup (64 rows) goes to shared memory in the
// layout TMA's 128-byte swizzle expects (64-column chunks of 64 x 128 bytes, the
// 16-byte units of row r permuted by r % 8, which also keeps the writes free of
// bank conflicts), then one thread stores it with TMA, asynchronously.
template <int kBlockN>
__device__ __forceinline__ void stage_tile_bf16(unsigned char* stage, const float* accum, int warp, int lane) {
#pragma unroll
    for (int i = 0; i < kBlockN / 8; ++i) {
        const int col = i * 8 + (lane % 4) * 2;
        unsigned char* chunk = stage + (col / 64) * (64 * 128);
        const int unit = (col % 64) / 8, within = (col % 8) * 2;
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const int row = warp * 16 + lane / 4 + half * 8;
            *reinterpret_cast<__nv_bfloat162*>(chunk + row * 128 + ((unit ^ (row % 8)) * 16) + within) =
                __floats2bfloat162_rn(accum[i * 4 + half * 2], accum[i * 4 + half * 2 + 1]);
        }
    }
}

// kTmaStore (bf16 D whose rows are 16-byte multiples): the epilogue stages each
// tile in shared memory and stores it with TMA, which clips the M and N edges;
// otherwise threads store straight from registers.
template <int kBlockM, int kBlockN, int kStages, bool kTmaStore, typename OutT>
__device__ __forceinline__ void fp8_gemm_nt(const TensorMap& tmap_a, const TensorMap& tmap_b,
                                            const TensorMap& tmap_sfa, const TensorMap& tmap_d,
                                            const float* __restrict__ sfb, OutT* d, const float* c, int m, int n,
                                            int k) {
    using Layout = FP8GemmLayout<kBlockM, kBlockN, kStages, kTmaStore>;
    using MMA = wgmma::FP8MMA<kBlockN>;
    // A tile then never straddles two of B's 128-column scale blocks: one B scale
    // per tile and K-block. (Wider or odd tiles need per-column scale selection,
    // which costs more issue slots in the promotion than it saves.)
    static_assert(128 % kBlockN == 0, "BLOCK_N must divide B's 128-column scale block");

    extern __shared__ __align__(1024) unsigned char smem[];
    unsigned char* smem_d = smem;
    unsigned char* smem_a = smem_d + Layout::kDBytes;
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
        if constexpr (kTmaStore) ptx::tma_prefetch_descriptor(&tmap_d);
        for (int s = 0; s < kStages; ++s) {
            ptx::mbarrier_init(&full[s], 1);
            ptx::mbarrier_init(&empty[s], Layout::kMathWarps);
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
    const bool paired = n % 2 == 0;  // row starts keep 2-element alignment

    int iter = 0;
    for (int tile = blockIdx.x; tile < num_tiles; tile += gridDim.x) {
        int m_tile, n_tile;
        tile_of_block(tile, m_tiles, n_tiles, m_tile, n_tile);
        const int n0 = n_tile * kBlockN;
        // B's scale per K-block comes from global memory (L2); load it one K-block
        // ahead so its latency hides behind a K-block of MMAs, not in the promotion.
        const float* sfb_row = sfb + static_cast<size_t>(n0 / 128) * k_blocks;
        float next_sb = __ldg(sfb_row);

        float accum[MMA::kAccumulators];
        float partial[MMA::kAccumulators];
#pragma unroll
        for (int i = 0; i < MMA::kAccumulators; ++i) accum[i] = 0.0f;

        for (int kb = 0; kb < k_blocks; ++kb, ++iter) {
            const int s = iter % kStages;
            const float sb = next_sb;
            if (kb + 1 < k_blocks) next_sb = __ldg(sfb_row + kb + 1);

            ptx::mbarrier_wait(&full[s], (iter / kStages) & 1);
            const float s0 = smem_sfa[s * kBlockM + row_in_tile] * sb;
            const float s1 = smem_sfa[s * kBlockM + row_in_tile + 8] * sb;

            const uint64_t desc_a = ptx::smem_descriptor_sw128(smem_a + s * Layout::kABytes + warpgroup * 64 * kBlockK);
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
                accum[i * 4 + 0] += partial[i * 4 + 0] * s0;
                accum[i * 4 + 1] += partial[i * 4 + 1] * s0;
                accum[i * 4 + 2] += partial[i * 4 + 2] * s1;
                accum[i * 4 + 3] += partial[i * 4 + 3] * s1;
            }
        }

        if constexpr (kTmaStore) {
            // Each math warpgroup stages and stores its own 64 rows.
            unsigned char* stage = smem_d + warpgroup * 64 * kBlockN * 2;
            const bool issuer = threadIdx.x % 128 == 0;
            if (issuer) ptx::tma_store_wait_read();  // the previous tile's store has left the stage
            ptx::named_barrier(1 + warpgroup, 128);
            stage_tile_bf16<kBlockN>(stage, accum, warp, lane);
            ptx::fence_proxy_async();
            ptx::named_barrier(1 + warpgroup, 128);
            if (issuer) {
#pragma unroll
                for (int chunk = 0; chunk < kBlockN / 64; ++chunk)
                    ptx::tma_store_2d(&tmap_d, stage + chunk * 64 * 128, n0 + chunk * 64,
                                      m_tile * kBlockM + warpgroup * 64);
                ptx::tma_store_commit();
            }
        } else {
            // Straight from registers; rows >= M and columns >= N are skipped.
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
                    store_pair(d, c, offset, col + 1 < n, paired, accum[i * 4 + half * 2],
                               accum[i * 4 + half * 2 + 1]);
                }
            }
        }
    }
    // Shared memory must outlive the last TMA store's reads.
    if constexpr (kTmaStore) {
        if (threadIdx.x % 128 == 0) ptx::tma_store_wait();
    }
}

}  // namespace deep_gemm
