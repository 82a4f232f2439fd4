// The GEMM kernel, "NT" layout: D[M,N] = A[M,K] @ B[N,K]^T (+ C), for
//   * FP8: e4m3 inputs with DeepGEMM's block scales, A per 1x128 (row, K-block),
//     B per 128x128 block (recipe (1, 128, 128), "1D2D") or, like A, per column
//     and K-block (recipe (1, 1, 128), "1D1D": dense only, B's scales then travel
//     with each stage), accumulated in FP32 with per-K-block promotion;
//   * BF16: plain bf16 inputs, FP32 accumulation;
// each either dense, or grouped over experts (MoE):
//   * contiguous: the experts' rows are concatenated along M in segments aligned
//     to 128 rows; grouping[r] is the expert of row r, or -1 for a padding row.
//     A tile's first row names its expert, and the whole tile is computed with it
//     and stored, padding rows too (their D rows get A_pad @ B^T, as upstream
//     DeepGEMM writes them); tiles that start with padding are skipped. B is [G, N, K];
//   * masked: A [G, M, K] and D [G, M, N]; only the first grouping[g] rows of
//     group g are computed and written (grouping lives on the GPU, so the launch
//     needs no host sync and can be captured in a CUDA graph);
//   * by columns (fp8_einsum's heads): every group has all M rows; A [M, G, K] and
//     D [M, G, N] are 3D tensor maps (their boxes clipped at each group's K and N),
//     A's scales are laid out as masked. The grid is dense over M x (G x N tiles).
//
// Persistent: one CTA per SM walks the tiles in the Scheduler's order, stepping
// by the grid size.
//   * Split K (dense only): the last `split_tiles` tiles, the ones that would leave
//     SMs idle in a last partial wave (or all tiles, when there are fewer than SMs),
//     are cut along K into `splits` slices run by different CTAs. Each slice writes
//     its FP32 partial tile to a workspace; the CTA that finishes last adds the
//     slices up in slice order (so the sum does not depend on timing) and stores D.
//     Nobody waits on anybody, so there is no deadlock whatever runs alongside.
//     128x256 tiles may instead be cut into their two row halves (`row_halves`):
//     each CTA computes one math warpgroup's 64 rows over the whole K and stores
//     them; its other warpgroup skips the tile, the first releasing each stage for
//     both.
//   * The last warpgroup is the producer: one thread streams K-blocks of A, B
//     (and A's FP8 scales) into a ring of shared-memory stages with TMA, running
//     ahead into the next tile while the math warpgroups store the current one.
//   * The other warpgroups (one per 64 rows: one or two, FP8 dense also three)
//     run WGMMAs over each K-block. FP8 goes into a temporary accumulator that is
//     folded into the FP32 result times the two block scales ("promotion"), so
//     fp8 products never accumulate across blocks; tiles wider than B's 128-column
//     scale block do this in 64-column sub-tiles, each with its own B scale. With
//     up to two warpgroups, two temporaries take turns, so one step's MMAs run
//     while the previous one is promoted; three have registers for one each, and
//     the tensor cores run the other two's MMAs during a promotion. BF16
//     accumulates in place and keeps one K-block of MMAs in flight.
//   * Epilogue: bf16 D (rows a 16-byte multiple apart), and dense fp32 D, goes
//     through shared memory in chunks of 128-byte rows (64 / 32 columns), the last
//     one narrower when BLOCK_N is not a multiple, each stored with TMA while the
//     next is staged; a dense D that is its own C (weight gradients: D += A B^T) is
//     added to by the store (a TMA reduction in L2; a bf16 D so rounds twice, as
//     upstream's), so the math warps never wait for C's loads. Other outputs are
//     written from registers. Masked: a math warpgroup whose 64 rows reach past its
//     group's count stores that tile from registers instead (TMA would write the
//     rows past it).
// Stages hand over through two mbarriers each: `full` (TMA bytes landed) and
// `empty` (every math warp is done reading). The ring position (stage, parity)
// runs on across tiles; each side steps its own copy, one K-block at a time.
#pragma once

#include <cuda_bf16.h>

#include <deep_gemm/epilogue.cuh>
#include <deep_gemm/gemm_args.cuh>
#include <deep_gemm/ptx.cuh>
#include <deep_gemm/wgmma.cuh>

namespace deep_gemm {

enum class GemmType { Dense = 0, GroupedContiguous = 1, GroupedMasked = 2, GroupedColumns = 3 };

constexpr int kScaleBlock = 128;  // FP8 scale granularity along K (and B's N)
constexpr int kBlockKBytes = 128; // one K-block: one 128-byte swizzled row of A and B

template <typename T>
__device__ __forceinline__ T ceil_div(T a, T b) { return (a + b - 1) / b; }

// Calls f(Constant<0>{}) ... f(Constant<N - 1>{}): a loop whose index is a
// compile-time constant (a template argument) in the body.
template <int V>
struct Constant { static constexpr int value = V; };
template <int N, int I = 0, typename F>
__device__ __forceinline__ void constexpr_for(F&& f) {
    if constexpr (I < N) {
        f(Constant<I>{});
        constexpr_for<N, I + 1>(f);
    }
}

// std::conditional without <type_traits> (NVRTC has no C++ library).
template <bool kFirst, typename A, typename B>
struct Select { using type = A; };
template <typename A, typename B>
struct Select<false, A, B> { using type = B; };

// Tile order inside a grid of m_tiles x n_tiles: groups of kGroupM tile-rows,
// column by column, so the CTAs in flight share a few A and B panels in L2. 32
// tile-rows are all of a 4096-row GEMM: each B panel is then read from DRAM once
// (its 32 tiles run at the same time) where groups of 8 read it four times; A's
// 4096 rows stay in L2 for every column. Against 8 on H200 (benchmarks/NOTES.md
// v39): M = 4096, N x K = 24576x1536 +0.6%, 32768x512 +1%, 7168x2048 +10%,
// 7168x16384 -0.3% (A no longer fits L2 there), the others level or better.
constexpr int kGroupM = 32;  // csrc/jit_kernels/gemm.cpp mirrors this (TileOrder's divisors)
__device__ __forceinline__ void tile_of_block(int block, int m_tiles, int n_tiles, int& m_tile, int& n_tile) {
    const int group_span = kGroupM * n_tiles;
    const int first_m = (block / group_span) * kGroupM;
    const int group_rows = min(kGroupM, m_tiles - first_m);
    const int in_group = block % group_span;
    m_tile = first_m + in_group % group_rows;
    n_tile = in_group / group_rows;
}

// tile_of_block's order for a grid fixed at launch (dense, contiguous) without its
// run-time divisions: a whole group's divide by kGroupM (shifts), the last group's
// (maybe fewer tile-rows) by a FastDivisor. The math warps took ~570 cycles from
// one tile's end to the next one's start, 290-370 with it; on H200 (benchmarks/NOTES.md
// v41) 4096x32768x512 +3.3%, 4096x24576x1536 +1.2%, M = 128 up to +5%.
// (Masked grids change per group and keep tile_of_block.)
struct TileOrder {
    int m_tiles, n_tiles;
    FastDivisor by_group_tiles;     // kGroupM * n_tiles
    FastDivisor by_last_group_rows; // the last group's tile-rows
    __device__ __forceinline__ void tile(int block, int& m_tile, int& n_tile) const {
        const int group = by_group_tiles.divide(block);
        const int first_m = group * kGroupM, in_group = block - group * kGroupM * n_tiles;
        if (first_m + kGroupM <= m_tiles) {
            m_tile = first_m + in_group % kGroupM;
            n_tile = in_group / kGroupM;
        } else {
            n_tile = by_last_group_rows.divide(in_group);
            m_tile = first_m + in_group - n_tile * (m_tiles - first_m);
        }
    }
};

// Position in the ring of pipeline stages, running on across tiles: the stage and
// the parity of the pass over the ring (what a stage's barriers are waited on with).
template <int kStages>
struct RingPosition {
    int stage = 0;
    uint32_t phase = 0;
    __device__ __forceinline__ void advance() {
        if (++stage == kStages) {
            stage = 0;
            phase ^= 1;
        }
    }
    // advance() `count` times.
    __device__ __forceinline__ void skip(int count) {
        stage += count;
        phase ^= (stage / kStages) & 1;
        stage %= kStages;
    }
};

struct Tile {
    int group;   // expert (0 for dense)
    int m_tile;  // tile-row inside the group's rows (dense / contiguous: of all rows)
    int n_tile;
    int rows;    // rows of this group that exist (masked: grouping[group]; else M)
    bool skip;   // contiguous: padding rows only (or an invalid expert), nothing to compute
    int k_begin, k_end;  // the K-blocks this CTA computes
    int split, slice;    // split K: which split tile (-1: the whole K) and which slice of it
    int row_half;        // row halves: which warpgroup's rows this CTA computes (-1: all)
};

// Hands out tiles; producer and consumers each run one and see the same sequence.
template <GemmType kType, int kBlockM, int kBlockN>
struct Scheduler {
    int m, n, num_groups, k_blocks;
    const int* grouping;
    int splits, split_tiles;
    bool row_halves;  // the split tiles are cut into their row halves instead (splits = 2)
    TileOrder order;  // its m_tiles / divisors serve dense, contiguous and by-columns grids, n_tiles all
    FastDivisor by_group_n_tiles;  // by columns: order's tile-columns run over the groups' in turn
    int next_index;
    // Masked: the group the cursor is in, and the tile index where it starts.
    int group = 0, group_first = 0;

    __device__ Scheduler(int m_, int n_, int num_groups_, int k_blocks_, const int* grouping_, int splits_,
                         int split_tiles_, bool row_halves_, FastDivisor by_group_tiles, FastDivisor by_last_group_rows,
                         FastDivisor by_group_n_tiles_)
        : m(m_), n(n_), num_groups(num_groups_), k_blocks(k_blocks_), grouping(grouping_), splits(splits_),
          split_tiles(split_tiles_), row_halves(row_halves_),
          order{ceil_div(m_, kBlockM),
                (kType == GemmType::GroupedColumns ? num_groups_ : 1) * ceil_div(n_, kBlockN), by_group_tiles,
                by_last_group_rows},
          by_group_n_tiles(by_group_n_tiles_), next_index(blockIdx.x) {}

    // Rows of group g that are computed; clamped, so bad values cannot reach past A.
    __device__ int masked_rows(int g) const { return min(max(__ldg(grouping + g), 0), m); }

    // The next tile, or false when done. Contiguous tiles of padding come back
    // flagged `skip` rather than being skipped here: a loop in this function
    // keeps nvcc from unrolling the epilogue (accumulators spill to local memory).
    __device__ bool next(Tile& tile) {
        int index = next_index;
        next_index += gridDim.x;
        tile.skip = false;
        tile.k_begin = 0;
        tile.k_end = k_blocks;
        tile.split = -1;
        tile.row_half = -1;
        if constexpr (kType == GemmType::GroupedMasked) {
            // Tile indices rise monotonically, so the group cursor only moves forward.
            while (group < num_groups) {
                const int tiles = ceil_div(masked_rows(group), kBlockM) * order.n_tiles;
                if (index < group_first + tiles) break;
                group_first += tiles;
                ++group;
            }
            if (group >= num_groups) return false;
            const int rows = masked_rows(group);
            tile_of_block(index - group_first, ceil_div(rows, kBlockM), order.n_tiles, tile.m_tile, tile.n_tile);
            tile.group = group;
            tile.rows = rows;
        } else {
            const int m_tiles = order.m_tiles, n_tiles = order.n_tiles;
            // One exit test only: a second `return false` costs the mainloop its
            // uniform registers (ptxas then moves every WGMMA descriptor with R2UR).
            if (index >= m_tiles * n_tiles + split_tiles * (splits - 1)) return false;
            if constexpr (kType == GemmType::Dense) {
                // Whole tiles first, then the split tiles' slices, a tile's slices on
                // neighbouring CTAs (they run at the same time and share A and B in L2).
                const int whole = m_tiles * n_tiles - split_tiles;
                if (index >= whole) {
                    const int split = (index - whole) / splits, slice = (index - whole) % splits;
                    if (row_halves) {
                        tile.row_half = slice;
                    } else {
                        tile.split = split;
                        tile.slice = slice;
                        tile.k_begin = slice * k_blocks / splits;
                        tile.k_end = (slice + 1) * k_blocks / splits;
                    }
                    index = whole + split;
                }
            }
            order.tile(index, tile.m_tile, tile.n_tile);
            tile.rows = m;
            tile.group = 0;
            if constexpr (kType == GemmType::GroupedContiguous) {
                // Segments are BLOCK_M-aligned: the tile's first row names its expert.
                tile.group = __ldg(grouping + tile.m_tile * kBlockM);
                tile.skip = tile.group < 0 || tile.group >= num_groups;
            }
            if constexpr (kType == GemmType::GroupedColumns) {
                tile.group = by_group_n_tiles.divide(tile.n_tile);
                tile.n_tile -= tile.group * ceil_div(n, kBlockN);
            }
        }
        return true;
    }
};

__device__ __forceinline__ void store_pair(__nv_bfloat16* d, size_t offset, bool both, bool paired, float v0,
                                           float v1) {
    if (both && paired) {
        *reinterpret_cast<__nv_bfloat162*>(d + offset) = __floats2bfloat162_rn(v0, v1);
    } else {
        d[offset] = __float2bfloat16_rn(v0);
        if (both) d[offset + 1] = __float2bfloat16_rn(v1);
    }
}

__device__ __forceinline__ void store_pair(float* d, size_t offset, bool both, bool paired, float v0, float v1) {
    if (both && paired) {
        *reinterpret_cast<float2*>(d + offset) = make_float2(v0, v1);
    } else {
        d[offset] = v0;
        if (both) d[offset + 1] = v1;
    }
}

// Two adjacent elements of C (2-element aligned), and one, as fp32.
__device__ __forceinline__ float2 load_pair(const float* c) { return *reinterpret_cast<const float2*>(c); }
__device__ __forceinline__ float2 load_pair(const __nv_bfloat16* c) {
    return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(c));
}
__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

template <bool kFP8, bool kSfbPerColumn, int kBlockM, int kBlockN, int kStages, bool kTmaStore, int kOutBytes>
struct GemmLayout {
    static constexpr int kMathWarpgroups = kBlockM / 64;
    static constexpr int kMathWarps = kMathWarpgroups * 4;
    static constexpr int kThreads = 128 * (kMathWarpgroups + 1);
    static constexpr int kABytes = kBlockM * kBlockKBytes;
    static constexpr int kBBytes = kBlockN * kBlockKBytes;
    static constexpr int kSfaBytes = kFP8 ? kBlockM * static_cast<int>(sizeof(float)) : 0;
    static constexpr int kSfbBytes = kSfbPerColumn ? kBlockN * static_cast<int>(sizeof(float)) : 0;
    // What TMA delivers per stage (its full barrier waits for these bytes).
    static constexpr int kStageBytes = kABytes + kBBytes + kSfaBytes + kSfbBytes;
    // A tensor copy writes shared memory at 128-byte aligned addresses: 1D1D's B scales of
    // narrow tiles (16 columns, 64 bytes) get a padded slot per stage.
    static constexpr int kSfbSlot = (kSfbBytes + 127) / 128 * 128 / static_cast<int>(sizeof(float));  // floats
    // The output staged for the TMA store, in chunks of 128-byte rows (64 bf16 or 32
    // fp32 columns; the last one narrower when BLOCK_N is not a multiple): per math
    // warpgroup a ring of (up to) two chunk buffers, so a wide tile does not cost a
    // pipeline stage.
    static_assert(kOutBytes == 2 || kOutBytes == 4, "D is bf16 or fp32");
    static constexpr int kChunkN = 128 / kOutBytes;
    static constexpr int kChunks = (kBlockN + kChunkN - 1) / kChunkN;
    static constexpr int kTailWidth = kBlockN % kChunkN;  // 0: every chunk is whole
    static constexpr int kDChunks = kChunks < 2 ? kChunks : 2;
    static constexpr int kDBytes = kTmaStore ? kMathWarpgroups * kDChunks * 64 * 128 : 0;
    static constexpr int kMathThreads = kMathWarpgroups * 128;
    // D's staging tile, A tiles, B tiles (each 1024-byte aligned for the swizzle),
    // A's scales, B's (1D1D), the full/empty barriers, the split-K verdict (16 bytes).
    // csrc/jit_kernels/gemm.cpp mirrors this.
    static constexpr int kSharedBytes =
        kDBytes + kStages * (kStageBytes - kSfbBytes + kSfbSlot * static_cast<int>(sizeof(float))) + kStages * 2 * 8 + 16;
    // Hopper's opt-in limit (227 KiB); ptx::SmemDescriptor also relies on addresses below 256 KiB.
    static_assert(kSharedBytes <= 227 * 1024, "shared memory beyond what a CTA may have");

    static_assert(kBlockM == 64 || kBlockM == 128 || (kFP8 && kBlockM == 192 && kBlockN <= 128),
                  "BLOCK_M is one or two math warpgroups (FP8: or three, at most 128 columns)");
    // FP8 tiles wider than B's 128-column scale block run their MMAs in sub-tiles
    // of 64 columns, each promoted with its own B scale (a sub-tile never straddles
    // two scale blocks), two temporaries taking turns. (On H200, 128x256 tiles in two
    // 128-column sub-tiles with one temporary, the most the registers hold, were
    // 1-4% slower.)
    // (1D1D scales every column on its own: one sub-tile, at most 128 columns.)
    static_assert(!kSfbPerColumn || (kFP8 && kBlockN <= kScaleBlock && kBlockM <= 128),
                  "1D1D tiles are FP8, of at most 128 columns and two math warpgroups");
    static constexpr int kSubN = kBlockN <= kScaleBlock ? kBlockN : 64;
    static constexpr int kSubTiles = kBlockN / kSubN;
    // FP8 temporary accumulators (one sub-tile's each): two take turns where the
    // registers allow (the final accumulators plus two temporaries in 192 per
    // thread), else one, and the other warpgroups' MMAs keep the tensor cores busy
    // during a promotion (three math warpgroups, or the widest tiles).
    static constexpr int kTemporaries = kMathWarpgroups < 3 && kBlockN / 2 + kSubN <= 192 ? 2 : 1;
    // Registers per thread after setmaxnreg: the producer keeps kProducerRegisters,
    // the math warpgroups share the rest of the SM's 64K (at most 232 each).
    static constexpr int kProducerRegisters = kMathWarpgroups < 3 ? 40 : 24;
    static constexpr int kSpareRegisters = ptx::claimable_math_registers(kMathThreads + 128, kProducerRegisters);
    static constexpr int kMathRegisters = kSpareRegisters < 232 ? kSpareRegisters : 232;
    static_assert(kBlockN % 16 == 0 && kBlockN <= 256, "BLOCK_N must be a wgmma N size");
    // FP8: a tile (or each sub-tile of a wider one) then never straddles two of B's
    // 128-column scale blocks, so one B scale serves it for a K-block.
    static_assert(!kFP8 || (kScaleBlock % kSubN == 0 && kBlockN % kSubN == 0 && kBlockN <= 2 * kScaleBlock),
                  "FP8 BLOCK_N must divide B's 128-column scale block, or be a multiple of 64 up to 256");
};

// B's scales of a tile's 128-column block, one per K-block, from the tile's first.
template <int kBlockN>
__device__ __forceinline__ const float* tile_b_scales(const float* sfb, const Tile& tile, int n, int k_blocks) {
    return sfb +
           (static_cast<size_t>(tile.group) * ceil_div(n, kScaleBlock) + tile.n_tile * kBlockN / kScaleBlock) *
               k_blocks +
           tile.k_begin;
}

// A tile wider than a scale block spans two: the offset from its first block's
// scales to its second's, or 0 where the second lies past N (the columns it would
// scale are never stored, and its row would be past the group's scales).
template <int kBlockN>
__device__ __forceinline__ int second_b_scales_offset(const Tile& tile, int n, int k_blocks) {
    return (tile.n_tile * kBlockN / kScaleBlock + 1) < ceil_div(n, kScaleBlock) ? k_blocks : 0;
}

// Split K: this CTA's slice of a split tile goes to the workspace; returns true
// (with the slices' sum in `accum`) for the CTA whose slice arrives last, which then
// stores the tile, and false for the others. A thread's partial is kept in its own
// register order, so writes and reads are coalesced 16-byte accesses.
template <int kAccumulators, int kMathThreads>
__device__ __forceinline__ bool reduce_split(const GemmArgs& args, const Tile& tile, float* accum, int* verdict,
                                             uint32_t barrier_id) {
    constexpr int kVectors = kAccumulators / 4;
    // 32-bit offsets in float4s (the workspace stays far below 32 GiB), so few
    // registers are live next to the accumulators.
    const int first = tile.split * args.splits * kVectors * kMathThreads + threadIdx.x;
    float4* partials = reinterpret_cast<float4*>(args.partials);
#pragma unroll
    for (int v = 0; v < kVectors; ++v)
        __stcg(partials + first + (tile.slice * kVectors + v) * kMathThreads,
               make_float4(accum[v * 4], accum[v * 4 + 1], accum[v * 4 + 2], accum[v * 4 + 3]));
    // Release this CTA's partial before counting it; the last arriver acquires all.
    __threadfence();
    ptx::named_barrier(barrier_id, kMathThreads);
    if (threadIdx.x == 0) {
        const int arrived = atomicAdd(args.arrivals + tile.split, 1) + 1;
        __threadfence();
        *verdict = arrived == args.splits;
    }
    ptx::named_barrier(barrier_id, kMathThreads);
    if (!*verdict) return false;
    __threadfence();
    // Every slice from the workspace in slice order, this CTA's too: the same sum
    // whoever arrives last. (Outer loop over slices: one running address, not one per vector.)
#pragma unroll
    for (int i = 0; i < kAccumulators; ++i) accum[i] = 0.0f;
    for (int slice = 0; slice < args.splits; ++slice) {
        const float4* part = partials + first + slice * kVectors * kMathThreads;
#pragma unroll
        for (int v = 0; v < kVectors; ++v) {
            const float4 x = __ldcg(part + v * kMathThreads);
            accum[v * 4] += x.x;
            accum[v * 4 + 1] += x.y;
            accum[v * 4 + 2] += x.z;
            accum[v * 4 + 3] += x.w;
        }
    }
    return true;
}

// tmap_d stores 128-byte chunks of D's rows, tmap_d_tail the narrower last chunk (if
// any); tmap_sfb loads 1D1D's B scales (MN-major [ceil(K / 128), N], like A's).
// kMnMajorA / kMnMajorB (BF16; dense, B also by columns): that operand is stored MN-major
// ([K, M] / [K, N] rows, tmap_a / tmap_b over them; by columns B [G, K, N] in a 3D map that
// clips each group's K), loaded in boxes of 64 K-rows x 64 MN-columns (one 128-byte
// swizzled MN atom each, 8 KiB apart) that WGMMA reads transposed.
template <bool kFP8, bool kSfbPerColumn, GemmType kType, int kBlockM, int kBlockN, int kStages, bool kTmaStore,
          typename OutT, bool kMnMajorA = false, bool kMnMajorB = false>
__device__ __forceinline__ void gemm_nt(const TensorMap& tmap_a, const TensorMap& tmap_b, const TensorMap& tmap_sfa,
                                        const TensorMap& tmap_sfb, const TensorMap& tmap_d,
                                        const TensorMap& tmap_d_tail, const GemmArgs& args) {
    using Layout = GemmLayout<kFP8, kSfbPerColumn, kBlockM, kBlockN, kStages, kTmaStore, sizeof(OutT)>;
    using MMA = typename Select<kFP8, wgmma::FP8MMA<Layout::kSubN>, wgmma::BF16MMA<kBlockN, kMnMajorA, kMnMajorB>>::type;
    static_assert(!(kMnMajorA || kMnMajorB) || !kFP8, "MN-major operands: BF16 (WGMMA transposes 16-bit ones only)");
    static_assert(!kMnMajorA || kType == GemmType::Dense, "MN-major A: dense GEMMs");
    static_assert(!kMnMajorB || kType == GemmType::Dense || kType == GemmType::GroupedColumns,
                  "MN-major B: dense GEMMs and by columns");
    static_assert(!kMnMajorB || kBlockN % 64 == 0, "MN-major B comes in 64-column atoms");
    constexpr int kAtomBytes = 64 * kBlockKBytes;  // an MN-major box: 64 K-rows of 128 bytes
    constexpr int kAccumulators = kBlockN / 2;  // the tile's, per thread (m64nN: N / 2)
    constexpr bool kMasked = kType == GemmType::GroupedMasked;
    // Grouped tiles read their expert from their first row (contiguous) or
    // tile a group's rows (masked) in BLOCK_Ms that divide the 128-row alignment.
    static_assert(kType == GemmType::Dense || 128 % kBlockM == 0, "grouped BLOCK_M divides 128");
    static_assert(!kSfbPerColumn || kType == GemmType::Dense, "1D1D is dense only");
    constexpr bool kColumns = kType == GemmType::GroupedColumns;
    constexpr bool kFP32Out = sizeof(OutT) == 4;
    static_assert(!kTmaStore || !kFP32Out || kType == GemmType::Dense, "an fp32 D is stored with TMA when dense");

    extern __shared__ __align__(1024) unsigned char smem[];
    unsigned char* smem_d = smem;
    unsigned char* smem_a = smem_d + Layout::kDBytes;
    unsigned char* smem_b = smem_a + kStages * Layout::kABytes;
    float* smem_sfa = reinterpret_cast<float*>(smem_b + kStages * Layout::kBBytes);
    float* smem_sfb = reinterpret_cast<float*>(reinterpret_cast<unsigned char*>(smem_sfa) + kStages * Layout::kSfaBytes);
    uint64_t* full = reinterpret_cast<uint64_t*>(smem_sfb + kStages * Layout::kSfbSlot);
    uint64_t* empty = full + kStages;
    int* split_verdict = reinterpret_cast<int*>(empty + kStages);

    const int m = args.m, n = args.n;
    // Read from lane 0 so the compiler knows it is warp-uniform: the MMA descriptors
    // built from it then live in uniform registers, not in per-thread ones.
    const int warpgroup = __shfl_sync(0xffffffff, threadIdx.x / 128, 0);
    // A partial last K-block reads zeros past K (TMA fills them), so it needs no tail code.
    const int k_blocks = ceil_div(args.k, kFP8 ? kScaleBlock : kBlockKBytes / 2);
    // Split K's barrier over all math threads (1 + warpgroup are the epilogue's).
    constexpr uint32_t kMathBarrier = 1 + Layout::kMathWarpgroups;

    if (threadIdx.x == 0) {
        ptx::tma_prefetch_descriptor(&tmap_a);
        ptx::tma_prefetch_descriptor(&tmap_b);
        if constexpr (kFP8) ptx::tma_prefetch_descriptor(&tmap_sfa);
        if constexpr (kSfbPerColumn) ptx::tma_prefetch_descriptor(&tmap_sfb);
        if constexpr (kTmaStore) ptx::tma_prefetch_descriptor(&tmap_d);
        if constexpr (kTmaStore && Layout::kTailWidth > 0) ptx::tma_prefetch_descriptor(&tmap_d_tail);
        for (int s = 0; s < kStages; ++s) {
            ptx::mbarrier_init(&full[s], 1);
            ptx::mbarrier_init(&empty[s], Layout::kMathWarps);
        }
        ptx::fence_barrier_init();
    }
    __syncthreads();

    Scheduler<kType, kBlockM, kBlockN> scheduler(m, n, args.num_groups, k_blocks, args.grouping, args.splits,
                                                 args.split_tiles, args.row_halves != 0, args.group_tiles,
                                                 args.last_group_rows, args.group_n_tiles);
    Tile tile;

    if (warpgroup == Layout::kMathWarpgroups) {
        // Producer: give registers to the math warpgroups; one thread issues TMA.
        ptx::regs_dealloc<Layout::kProducerRegisters>();
        if (threadIdx.x == Layout::kMathWarpgroups * 128) {
            RingPosition<kStages> ring;
            // B read once (args.b_read_once): its lines come in evict-first, so in L2
            // they displace each other rather than A, which every tile re-reads, or
            // what earlier kernels left (often dirty lines, each eviction a DRAM write).
            // (A evict-last measured ~1% more, but would leave up to G x 128 rows of
            // evict-last lines behind for the kernels that follow.)
            const bool b_read_once = args.b_read_once;
            const uint64_t evict_first = ptx::l2_evict_first_policy();
            while (scheduler.next(tile)) {
                if (tile.skip) continue;
                const int a_row = (kMasked ? tile.group * m : 0) + tile.m_tile * kBlockM;
                const int b_row = tile.group * n + tile.n_tile * kBlockN;
                if constexpr (kFP8 && !kSfbPerColumn) {
                    // The math warpgroups load this tile's first two B scales before its
                    // first MMAs; from L1 rather than L2 once this has run ahead of them.
                    const float* sfb = tile_b_scales<kBlockN>(args.sfb, tile, n, k_blocks);
                    ptx::prefetch_l1(sfb);
                    ptx::prefetch_l1(sfb + (tile.k_end - tile.k_begin > 1));  // the next line, if crossed
                    if constexpr (kBlockN > kScaleBlock)  // the second block's
                        ptx::prefetch_l1(sfb + second_b_scales_offset<kBlockN>(tile, n, k_blocks));
                }
                for (int kb = tile.k_begin; kb < tile.k_end; ++kb, ring.advance()) {
                    const int s = ring.stage;
                    // Parity trick: the first pass over the ring finds every slot free.
                    ptx::mbarrier_wait(&empty[s], ring.phase ^ 1);
                    ptx::mbarrier_arrive_expect_tx(&full[s], Layout::kStageBytes);
                    const int k_col = kb * (kFP8 ? kScaleBlock : kBlockKBytes / 2);
                    unsigned char* a_stage = smem_a + s * Layout::kABytes;
                    unsigned char* b_stage = smem_b + s * Layout::kBBytes;
                    if constexpr (kColumns) {
                        ptx::tma_load_3d(a_stage, &tmap_a, &full[s], k_col, tile.group, a_row);
                    } else if constexpr (kMnMajorA) {
#pragma unroll
                        for (int j = 0; j < kBlockM / 64; ++j)
                            ptx::tma_load_2d(a_stage + j * kAtomBytes, &tmap_a, &full[s], a_row + 64 * j, k_col);
                    } else {
                        ptx::tma_load_2d(a_stage, &tmap_a, &full[s], k_col, a_row);
                    }
                    if constexpr (kMnMajorB) {
#pragma unroll
                        for (int j = 0; j < kBlockN / 64; ++j) {
                            if constexpr (kColumns)
                                ptx::tma_load_3d(b_stage + j * kAtomBytes, &tmap_b, &full[s],
                                                 tile.n_tile * kBlockN + 64 * j, k_col, tile.group);
                            else if (b_read_once)
                                ptx::tma_load_2d(b_stage + j * kAtomBytes, &tmap_b, &full[s], b_row + 64 * j, k_col,
                                                 evict_first);
                            else
                                ptx::tma_load_2d(b_stage + j * kAtomBytes, &tmap_b, &full[s], b_row + 64 * j, k_col);
                        }
                    } else if (b_read_once) {
                        ptx::tma_load_2d(b_stage, &tmap_b, &full[s], k_col, b_row, evict_first);
                    } else {
                        ptx::tma_load_2d(b_stage, &tmap_b, &full[s], k_col, b_row);
                    }
                    if constexpr (kFP8) {
                        // sfa rows are K-blocks (per group when grouped by rows or columns), columns are M.
                        ptx::tma_load_2d(smem_sfa + s * kBlockM, &tmap_sfa, &full[s], tile.m_tile * kBlockM,
                                         (kMasked || kColumns ? tile.group * k_blocks : 0) + kb);
                    }
                    if constexpr (kSfbPerColumn)
                        ptx::tma_load_2d(smem_sfb + s * Layout::kSfbSlot, &tmap_sfb, &full[s], tile.n_tile * kBlockN,
                                         kb);
                }
            }
        }
        return;
    }

    ptx::regs_alloc<Layout::kMathRegisters>();
    const int lane = threadIdx.x % 32;
    const int warp = (threadIdx.x / 32) % 4;
    // wgmma m64nN accumulator layout: this thread owns rows r and r + 8 of its
    // warpgroup's 64, and column pairs (8 * i + 2 * (lane % 4), +1) for each i.
    const int row_in_tile = warpgroup * 64 + warp * 16 + lane / 4;
    // Row starts (and by columns, group starts) keep 2-element alignment.
    const bool paired = n % 2 == 0 && (!kColumns || (args.d_row_stride | args.d_group_stride) % 2 == 0);
    OutT* d = static_cast<OutT*>(args.d);

    RingPosition<kStages> ring;
    // Row halves for dense tiles of two math warpgroups and 256 columns, the only
    // ones they measured faster on (in other kernels the skip below changed ptxas's
    // mainloop: benchmarks/NOTES.md v40).
    constexpr bool kRowHalves = kType == GemmType::Dense && Layout::kMathWarpgroups == 2 && kBlockN == 256;
    // Stage descriptors differ by a constant step (addresses are in 16-byte units).
    // (A warpgroup's 64 rows are one MN atom when A is MN-major: at the same offset.)
    const auto desc_a = kMnMajorA ? ptx::SmemDescriptor::sw128_mn(smem_a + warpgroup * kAtomBytes, kAtomBytes)
                                  : ptx::SmemDescriptor::sw128(smem_a + warpgroup * 64 * kBlockKBytes);
    const auto desc_b = kMnMajorB ? ptx::SmemDescriptor::sw128_mn(smem_b, kAtomBytes) : ptx::SmemDescriptor::sw128(smem_b);
    while (scheduler.next(tile)) {
        if (tile.skip) continue;
        const int n0 = tile.n_tile * kBlockN;
        // K-blocks below are counted from tile.k_begin (split K computes a slice).
        const int tile_k_blocks = tile.k_end - tile.k_begin;
        // A row half: the warpgroup whose rows another CTA computes skips the tile;
        // this one's warps release each stage for both.
        uint32_t releases = 1;  // arrivals per warp on a stage's empty barrier
        if constexpr (kRowHalves) {
            if (tile.row_half >= 0) {
                if (tile.row_half != warpgroup) {
                    ring.skip(tile_k_blocks);
                    continue;
                }
                releases = 2;
            }
        }
        auto release = [&](int stage) {
            if constexpr (kRowHalves)
                ptx::mbarrier_arrive(&empty[stage], releases);
            else
                ptx::mbarrier_arrive(&empty[stage]);
        };
        float accum[kAccumulators];
        const int tile_row = tile.m_tile * kBlockM;  // inside the group's rows when masked
        // Masked D rows past grouping[g] must stay untouched: TMA stores a warpgroup's
        // rows only where all 64 lie inside the group's (and so inside its M rows: a
        // store never reaches the next group's), the decision uniform per warpgroup.
        const bool tma_rows = kTmaStore && (!kMasked || tile_row + (warpgroup + 1) * 64 <= tile.rows);
        // Each math warpgroup stages and stores its own 64 rows, chunk by chunk
        // through its buffer ring (one store group per chunk); TMA clips M and N.
        auto store_chunk = [&](auto chunk) {
            unsigned char* buffers = smem_d + warpgroup * Layout::kDChunks * 64 * 128;  // this warpgroup's
            const bool issuer = threadIdx.x % 128 == 0;
            constexpr bool kTail = Layout::kTailWidth > 0 && chunk.value == Layout::kChunks - 1;
            unsigned char* buffer = buffers + (chunk.value % Layout::kDChunks) * 64 * 128;
            // The store that last read this buffer (kDChunks chunks ago, maybe in
            // the previous tile) is done with it.
            if (issuer) ptx::tma_store_wait_read<Layout::kDChunks - 1>();
            ptx::named_barrier(1 + warpgroup, 128);
            if constexpr (kTail)
                stage_tail_chunk<OutT, chunk.value, Layout::kTailWidth>(buffer, accum, warp, lane);
            else
                stage_chunk<OutT, chunk.value>(buffer, accum, warp, lane);
            ptx::fence_proxy_async();
            ptx::named_barrier(1 + warpgroup, 128);
            if (issuer) {
                const TensorMap* map = kTail ? &tmap_d_tail : &tmap_d;
                const int col = n0 + chunk.value * Layout::kChunkN;
                // Masked D's map is over [G * M, N]. Only the masked TMA kernels' call names
                // the group: elsewhere (kernels without the TMA store never get here) the
                // lambda then captures no more than before, and ptxas's code stays as it was.
                if constexpr (kColumns)
                    ptx::tma_store_3d(map, buffer, col, tile.group, tile_row + warpgroup * 64);
                else if constexpr (kMasked && kTmaStore)
                    ptx::tma_store_2d(map, buffer, col, tile.group * m + tile_row + warpgroup * 64);
                else if constexpr (kType == GemmType::Dense && (kFP32Out || !kFP8))
                    // D += tile where C is D itself: L2 adds the chunk to what D holds. (FP8
                    // with a bf16 D takes no C: its kernels keep the plain store alone.)
                    ptx::tma_store_2d(map, buffer, col, tile_row + warpgroup * 64, args.accumulate_d != 0);
                else
                    ptx::tma_store_2d(map, buffer, col, tile_row + warpgroup * 64);
                ptx::tma_store_commit();
            }
        };
        // FP8 tiles of several sub-tiles (256 columns; a sub-tile is a chunk) store each
        // chunk once the last K-block's promotion has finished it, while the next
        // sub-tile's MMAs run, so most of the epilogue overlaps the tensor cores' work
        // (H200, M = 4096: +3-10% where K <= 7168, benchmarks/NOTES.md v32). The last
        // chunk is stored after the loop: stored inside it, ptxas spilled accumulators.
        // Split K's slices store after the loop. Grouped tiles of one math warpgroup
        // (64 x 256: only with DG_GEMM_BLOCK_N forced, grouped 256-column tiles come from
        // 4096 rows) store after it too: with the early stores ptxas spills one register.
        // Masked tiles store early where their warpgroup's rows all lie inside the group
        // (tma_rows), the others from registers after the loop.
        // (C is added after the mainloop, so early stores must not come with a C: they do not,
        // FP8 with a bf16 D takes no C, csrc/apis/gemm.cpp and einsum.cpp.)
        constexpr bool kStoresEarly = kFP8 && kTmaStore && !kFP32Out && Layout::kSubTiles > 1 &&
                                      !(kType != GemmType::Dense && Layout::kMathWarpgroups == 1);
        static_assert(!kStoresEarly || (Layout::kSubN == 64 && Layout::kChunks == Layout::kSubTiles));
        const bool stores_early = kStoresEarly && tile.split < 0 && tma_rows;

        if constexpr (kFP8) {
            // The MMAs of a K-block go into a temporary accumulator that is then folded
            // into the result times the two block scales ("promotion"), one sub-tile at
            // a time. A step is one sub-tile of one K-block. With two temporaries taking
            // turns, step t + 1's MMAs run on the tensor cores while step t is promoted,
            // so the promotion's FFMAs do not leave them idle.
            constexpr int kSubs = Layout::kSubTiles;
            constexpr int kSubAccumulators = Layout::kSubN / 2;
            constexpr int kBuffers = Layout::kTemporaries;
            // B's scale per K-block comes from global memory (L2); load it two K-blocks
            // ahead (one was not enough under load) so its latency hides behind MMAs.
            // A tile wider than a scale block spans two: the second serves its sub-tiles
            // from hi_from on (at N's edge it may not exist: the first is read again).
            constexpr int kScaleBlocks = kBlockN > kScaleBlock ? 2 : 1;
            const float* sfb_row = tile_b_scales<kBlockN>(args.sfb, tile, n, k_blocks);
            const int hi_offset = second_b_scales_offset<kBlockN>(tile, n, k_blocks);
            const int hi_from = (kScaleBlock - n0 % kScaleBlock) / Layout::kSubN;
            // Two K-blocks ahead, indexed by kb % 2. Past the tile's last K-block a scale
            // is never read. Where its load is skipped there (the register keeps its old
            // value), ptxas copies the old value out before the predicated reload, and in a
            // tile's first step that copy waits for the tile's first scale to arrive from
            // global memory, holding back the first MMAs. 256-column tiles load regardless
            // (a select, or the row's last scale again): on H200 (benchmarks/NOTES.md v45)
            // 4096x24576x1536 +1.1%, 4096x32768x512 +1.4%; in the narrower tiles' mainloops
            // it cost (2048x7168x2048 -1.9%).
            constexpr bool kUnpredicated = kSubs > 1;
            const int sfb_last = k_blocks - 1 - tile.k_begin;  // the row's last scale, from sfb_row
            float sb_ahead[2][kScaleBlocks];
#pragma unroll
            for (int b = 0; b < (kSfbPerColumn ? 0 : kScaleBlocks); ++b) {
                sb_ahead[0][b] = __ldg(sfb_row + b * hi_offset);
                if constexpr (kUnpredicated)
                    sb_ahead[1][b] = __ldg(sfb_row + b * hi_offset + min(1, sfb_last));
                else
                    sb_ahead[1][b] = tile_k_blocks > 1 ? __ldg(sfb_row + b * hi_offset + 1) : 0.0f;
            }
            const float* sfb_next = sfb_row + 2;
            float sb[kScaleBlocks], sa[2];  // the current K-block's B scales, A's (rows r, r + 8)
            int stage = 0;                  // the current K-block's stage
            int stage_of[kBuffers];         // the stage each buffer's step reads
            float partial[kBuffers][kSubAccumulators];
            float scale[kBuffers][2];  // per buffer: (row r, row r + 8) scales of its step
#pragma unroll
            for (int i = 0; i < kAccumulators; ++i) accum[i] = 0.0f;

            // Step T of the K-block pair that starts at pair_kb (T may reach into the
            // next pair's first K-block): waits for the K-block's stage and reads its
            // scales at its first sub-tile, then issues the sub-tile's MMAs into
            // partial[T % kBuffers]. (T is a compile-time constant, so every array
            // index below is too and the arrays stay in registers.)
            auto issue = [&](int pair_kb, auto step) {
                constexpr int kT = decltype(step)::value;
                constexpr int kSub = kT % kSubs, kBuf = kT % kBuffers, kAhead = (kT / kSubs) % 2;
                if constexpr (kSub == 0) {
                    const int kb = pair_kb + kT / kSubs;
                    stage = ring.stage;
#pragma unroll
                    for (int b = 0; b < (kSfbPerColumn ? 0 : kScaleBlocks); ++b) {
                        sb[b] = sb_ahead[kAhead][b];
                        if constexpr (kUnpredicated)
                            sb_ahead[kAhead][b] = kb + 2 < tile_k_blocks ? __ldg(sfb_next + b * hi_offset) : 0.0f;
                        else if (kb + 2 < tile_k_blocks)
                            sb_ahead[kAhead][b] = __ldg(sfb_next + b * hi_offset);
                    }
                    ++sfb_next;
                    ptx::mbarrier_wait(&full[stage], ring.phase);
                    ring.advance();
                    sa[0] = smem_sfa[stage * kBlockM + row_in_tile];
                    sa[1] = smem_sfa[stage * kBlockM + row_in_tile + 8];
                }
                stage_of[kBuf] = stage;
                if constexpr (kSfbPerColumn) {  // B's scales come per column, in the promotion
                    scale[kBuf][0] = sa[0];
                    scale[kBuf][1] = sa[1];
                } else {
                    const float sb_sub = kScaleBlocks > 1 && kSub >= hi_from ? sb[kScaleBlocks - 1] : sb[0];
                    scale[kBuf][0] = sa[0] * sb_sub;
                    scale[kBuf][1] = sa[1] * sb_sub;
                }
                const uint32_t a_units = stage * (Layout::kABytes >> 4);
                const uint32_t b_units = stage * (Layout::kBBytes >> 4) + kSub * Layout::kSubN * (kBlockKBytes >> 4);
#pragma unroll
                for (int i = 0; i < kSubAccumulators; ++i) ptx::fence_operand(partial[kBuf][i]);
                ptx::wgmma_fence();
#pragma unroll
                for (int kk = 0; kk < kBlockKBytes / 32; ++kk) {
                    // Each MMA consumes 32 bytes of the swizzled row: +2 in 16-byte units.
                    MMA::run(desc_a.at(a_units + kk * 2), desc_b.at(b_units + kk * 2), partial[kBuf], kk > 0);
                }
                ptx::wgmma_commit();
            };
            // Once step T's MMAs are complete (the caller waited): release the stage
            // after a K-block's last sub-tile, and fold the step into the result.
            auto promote = [&](auto step) {
                constexpr int kT = decltype(step)::value;
                constexpr int kSub = kT % kSubs, kBuf = kT % kBuffers;
#pragma unroll
                for (int i = 0; i < kSubAccumulators; ++i) ptx::fence_operand(partial[kBuf][i]);
                if constexpr (kSfbPerColumn) {
                    // This thread's column pairs' B scales, from the stage; released after.
                    const float* sfb_stage = smem_sfb + stage_of[kBuf] * Layout::kSfbSlot + (lane % 4) * 2;
#pragma unroll
                    for (int i = 0; i < Layout::kSubN / 8; ++i) {
                        const float2 sb_pair = *reinterpret_cast<const float2*>(sfb_stage + i * 8);
                        accum[i * 4 + 0] += partial[kBuf][i * 4 + 0] * (scale[kBuf][0] * sb_pair.x);
                        accum[i * 4 + 1] += partial[kBuf][i * 4 + 1] * (scale[kBuf][0] * sb_pair.y);
                        accum[i * 4 + 2] += partial[kBuf][i * 4 + 2] * (scale[kBuf][1] * sb_pair.x);
                        accum[i * 4 + 3] += partial[kBuf][i * 4 + 3] * (scale[kBuf][1] * sb_pair.y);
                    }
                    __syncwarp();
                    if (lane == 0) release(stage_of[kBuf]);
                } else {
                    if constexpr (kSub == kSubs - 1) {
                        // The MMAs and this warp's scale reads are done with the stage.
                        __syncwarp();
                        if (lane == 0) release(stage_of[kBuf]);
                    }
                    constexpr int kFirst = kSub * kSubAccumulators;  // the sub-tile's columns in accum
#pragma unroll
                    for (int i = 0; i < Layout::kSubN / 8; ++i) {
                        accum[kFirst + i * 4 + 0] += partial[kBuf][i * 4 + 0] * scale[kBuf][0];
                        accum[kFirst + i * 4 + 1] += partial[kBuf][i * 4 + 1] * scale[kBuf][0];
                        accum[kFirst + i * 4 + 2] += partial[kBuf][i * 4 + 2] * scale[kBuf][1];
                        accum[kFirst + i * 4 + 3] += partial[kBuf][i * 4 + 3] * scale[kBuf][1];
                    }
                }
            };
            // The steps of `count` K-blocks from kb, the first one already issued: each
            // issues the next (if `last` is false, also the first step after them)
            // before promoting itself. In the tile's last K-block a promoted sub-tile
            // is final and may be stored at once (stores_early).
            auto run_steps = [&](int kb, auto count, auto last) {
                constexpr int kSteps = decltype(count)::value * kSubs;
                constexpr_for<kSteps>([&](auto t) {
                    constexpr int kT = decltype(t)::value;
                    if constexpr (kT + 1 < kSteps || !decltype(last)::value) {
                        issue(kb, Constant<kT + 1>{});
                        ptx::wgmma_wait<1>();
                    } else {
                        ptx::wgmma_wait<0>();
                    }
                    promote(t);
                    if constexpr (kStoresEarly && decltype(last)::value && kT / kSubs == decltype(count)::value - 1 &&
                                  kT % kSubs < kSubs - 1) {
                        if (stores_early) store_chunk(Constant<kT % kSubs>{});
                    }
                });
            };

            if constexpr (kBuffers == 2) {
                // The pipeline with its tail peeled off, so the loop body has one fixed
                // shape: with the wait_group 1 / 0 choice inside the loop, ptxas cannot
                // tell which buffer is retired and serialises the MMAs (its note C7514).
                // Two K-blocks a loop step, so that kb % 2 (B's scales ahead) and the
                // buffer of each step are compile-time indices.
                issue(0, Constant<0>{});
                int kb = 0;
                for (; kb + 2 < tile_k_blocks; kb += 2) run_steps(kb, Constant<2>{}, Constant<false>{});
                if (kb + 1 < tile_k_blocks)
                    run_steps(kb, Constant<2>{}, Constant<true>{});
                else
                    run_steps(kb, Constant<1>{}, Constant<true>{});
            } else {
                // One temporary: each step is issued, waited for and promoted in turn.
                auto one_by_one = [&](int kb, auto count) {
                    constexpr_for<decltype(count)::value * kSubs>([&](auto t) {
                        issue(kb, t);
                        ptx::wgmma_wait<0>();
                        promote(t);
                    });
                };
                int kb = 0;
                for (; kb + 1 < tile_k_blocks; kb += 2) one_by_one(kb, Constant<2>{});
                if (kb < tile_k_blocks) one_by_one(kb, Constant<1>{});
            }
        } else {
            // BF16: MMAs accumulate in place; a stage is released once the next
            // K-block's MMAs are issued and the previous group is known complete.
#pragma unroll
            for (int i = 0; i < kAccumulators; ++i) ptx::fence_operand(accum[i]);
            int previous = 0;  // the stage of the K-block before
            for (int kb = 0; kb < tile_k_blocks; ++kb) {
                const int s = ring.stage;
                ptx::mbarrier_wait(&full[s], ring.phase);
                ring.advance();
                const uint32_t a_units = s * (Layout::kABytes >> 4), b_units = s * (Layout::kBBytes >> 4);
                // An MMA takes 16 of K: 32 bytes along a K-major row, 16 rows of an MN-major atom.
                constexpr uint32_t kAStep = kMnMajorA ? 16 * kBlockKBytes / 16 : 2;
                constexpr uint32_t kBStep = kMnMajorB ? 16 * kBlockKBytes / 16 : 2;
                ptx::wgmma_fence();
#pragma unroll
                for (int kk = 0; kk < kBlockKBytes / 32; ++kk)
                    MMA::run(desc_a.at(a_units + kk * kAStep), desc_b.at(b_units + kk * kBStep), accum,
                             kb > 0 || kk > 0);
                ptx::wgmma_commit();
                ptx::wgmma_wait<1>();
                if (kb > 0) {
                    __syncwarp();
                    if (lane == 0) release(previous);
                }
                previous = s;
            }
            ptx::wgmma_wait<0>();
#pragma unroll
            for (int i = 0; i < kAccumulators; ++i) ptx::fence_operand(accum[i]);
            __syncwarp();
            if (lane == 0) release(previous);
        }

        if constexpr (kType == GemmType::Dense) {
            if (tile.split >= 0 &&
                !reduce_split<kAccumulators, Layout::kMathThreads>(args, tile, accum, split_verdict, kMathBarrier))
                continue;  // another slice of this tile arrives later and stores it
        }

        // D = acc + C (C of D's type, possibly D itself; a dense D stored with TMA adds
        // itself in the store instead, args.accumulate_d): C joins the accumulators before
        // anything is stored. A load interleaved with the stores could not move above an
        // earlier one (C may alias D), so each element's load waited for the last store.
        const size_t group_row0 = kMasked ? static_cast<size_t>(tile.group) * m : 0;
        auto d_offset = [&](int row, int col) -> size_t {
            if constexpr (kColumns) return row * args.d_row_stride + tile.group * args.d_group_stride + col;
            return (group_row0 + row) * n + col;
        };
        if (args.c != nullptr) {
            const auto* c = static_cast<const OutT*>(args.c);
#pragma unroll
            for (int i = 0; i < kBlockN / 8; ++i) {
                const int col = n0 + i * 8 + (lane % 4) * 2;
#pragma unroll
                for (int half = 0; half < 2; ++half) {
                    const int row = tile_row + row_in_tile + half * 8;
                    if (row >= tile.rows || col >= n) continue;
                    const size_t offset = d_offset(row, col);
                    const int first = i * 4 + half * 2;
                    if (col + 1 < n && paired) {
                        const float2 both = load_pair(c + offset);
                        accum[first] += both.x;
                        accum[first + 1] += both.y;
                    } else {
                        accum[first] += to_float(c[offset]);
                        if (col + 1 < n) accum[first + 1] += to_float(c[offset + 1]);
                    }
                }
            }
        }

        if (stores_early) {
            store_chunk(Constant<Layout::kChunks - 1>{});  // the others went out in the last K-block
        } else if (tma_rows) {
            constexpr_for<Layout::kChunks>(store_chunk);
        } else {
            // Straight from registers; rows past the group's rows and columns >= N
            // are skipped.
            bool row_ok[2];  // this thread's two rows
#pragma unroll
            for (int half = 0; half < 2; ++half) {
                const int row = tile_row + row_in_tile + half * 8;
                row_ok[half] = row < tile.rows;
            }
#pragma unroll
            for (int i = 0; i < kBlockN / 8; ++i) {
                const int col = n0 + i * 8 + (lane % 4) * 2;
#pragma unroll
                for (int half = 0; half < 2; ++half) {
                    if (row_ok[half] && col < n) {
                        const int row = tile_row + row_in_tile + half * 8;
                        const size_t offset = d_offset(row, col);
                        store_pair(d, offset, col + 1 < n, paired, accum[i * 4 + half * 2],
                                   accum[i * 4 + half * 2 + 1]);
                    }
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
