// The sparse-attention indexer's logits (DeepSeek V3.2), prefill form: for query row
// i and key row j inside [ks[i], ke[i]),
//   logits[i, j] = scale[j] * sum_h weights[i, h] * relu(q[i, h] . kv[j])
// with e4m3 q [seq, H, D], e4m3 kv [seq_kv, D] and one fp32 scale per key row.
//
// A "unit" is one math warpgroup and one producer warp; a CTA holds kUnits of them,
// each working on its own block of query rows (kQRows = 128 / H rows: 128 q-heads).
// The producer loads the block's Q once, then streams 64-key tiles of KV and their
// scales with TMA into a ring of stages. The math warpgroup computes
// S^T = KV_tile . Q^T with one FP8 WGMMA per 32 bytes of D (64 keys x 128 q-heads,
// fp32), then per key and query row sums weights x relu(S) over the heads: each
// thread holds H / 4 heads of every query row for two keys, the quad's four lanes
// add theirs up (reduce-scatter: each lane ends with different sums), and the lane
// scales by the key's scale and stores. Only entries inside [ks[i], ke[i]) are
// written; clean_logits (below) fills the rest of a row with -inf.
// Query blocks run longest first (the last rows of a causal mask see the most keys).
#pragma once

#include <cuda_bf16.h>

#include <deep_gemm/ptx.cuh>
#include <deep_gemm/wgmma.cuh>

namespace deep_gemm::indexer {

constexpr int kTileKeys = 64;      // key rows per tile: one warpgroup's MMA rows
constexpr int kQHeads = 128;       // MMA columns: query rows x heads (dense)
constexpr int kMathThreads = 128;  // one warpgroup

__device__ __forceinline__ float negative_infinity() { return __int_as_float(0xff800000); }

// Matrix descriptor of a K-major tile of kRowBytes-byte rows that TMA wrote with the
// swizzle of that width (32, 64 or 128 bytes; 8-row core groups 8 x kRowBytes apart),
// starting `k_bytes` into each row. Tiles are 1024-byte aligned.
template <int kRowBytes>
__device__ __forceinline__ uint64_t kmajor_descriptor(const void* tile, int k_bytes) {
    static_assert(kRowBytes == 32 || kRowBytes == 64 || kRowBytes == 128, "row width has no swizzle mode");
    constexpr uint32_t kMode = kRowBytes == 128 ? 1 : (kRowBytes == 64 ? 2 : 3);
    const uint32_t lo = ((ptx::smem_addr(tile) + k_bytes) & 0x3FFFF) >> 4;
    const uint32_t hi = ((8 * kRowBytes) >> 4) | (kMode << 30);
    uint64_t desc;
    asm("mov.b64 %0, {%1, %2};" : "=l"(desc) : "r"(lo), "r"(hi));
    return desc;
}

// acc[64 keys x kN columns] = keys . columns^T over kDim bytes of e4m3.
template <int kDim, int kN>
__device__ __forceinline__ void mma_tile(const void* keys, const void* columns, float* acc) {
    constexpr int kAcc = kN / 2;
#pragma unroll
    for (int i = 0; i < kAcc; ++i) ptx::fence_operand(acc[i]);
    ptx::wgmma_fence();
#pragma unroll
    for (int k = 0; k < kDim / 32; ++k)
        wgmma::FP8MMA<kN>::run(kmajor_descriptor<kDim>(keys, k * 32), kmajor_descriptor<kDim>(columns, k * 32), acc, k > 0);
    ptx::wgmma_commit();
    ptx::wgmma_wait<0>();
#pragma unroll
    for (int i = 0; i < kAcc; ++i) ptx::fence_operand(acc[i]);
}

// The weighted head sums of one MMA tile. The accumulator's column c (of kN) is head
// c % kHeads of query row c / kHeads; a thread holds columns 8i + 2 (lane % 4) + {0, 1}
// of keys lane / 4 (r = 0) and lane / 4 + 8 (r = 1) of its warp's 16.
template <int kN, int kHeads>
struct HeadSums {
    static constexpr int kRows = kN / kHeads;    // query rows among the columns
    static constexpr int kSums = 2 * kRows;      // per thread before the quad reduction: (row, r)
    static constexpr int kKept = kSums >= 4 ? kSums / 4 : 1;  // per lane after it
    static constexpr int kWeights = kN / 4;      // the thread's columns
    static_assert(kHeads % 8 == 0 && kN % kHeads == 0, "heads must cover whole 8-column groups");
    static_assert((kSums & (kSums - 1)) == 0, "the quad reduction halves the sums: a power of two");
    static_assert(kKept <= 2, "a lane's kept sums must all be one query row's");

    // Head of the thread's weight slot i (column 8 (i / 2) + 2 (lane % 4) + i % 2) and its query row.
    __device__ __forceinline__ static int head_of(int i, int lane) { return (8 * (i / 2)) % kHeads + 2 * (lane % 4) + i % 2; }
    __device__ __forceinline__ static int row_of(int i) { return (8 * (i / 2)) / kHeads; }

    // Which (row, r) a lane's kept sum k is, and whether this lane stores it (with
    // two sums per thread, two lanes of a quad end with the same one).
    __device__ __forceinline__ static int index_of(int k, int lane) {
        const int b = lane & 1, c = (lane >> 1) & 1;
        return kSums >= 4 ? k + kKept * c + 2 * kKept * b : b;
    }
    __device__ __forceinline__ static bool stores(int lane) { return kSums >= 4 || ((lane >> 1) & 1) == 0; }

    // out[k] = the quad's sum for index_of(k, lane).
    __device__ __forceinline__ static void run(const float* acc, const float* w, int lane, float* out) {
        float sums[kSums];
#pragma unroll
        for (int s = 0; s < kSums; ++s) sums[s] = 0.0f;
#pragma unroll
        for (int g = 0; g < kN / 8; ++g) {
            const int row = (8 * g) / kHeads;
#pragma unroll
            for (int r = 0; r < 2; ++r) {
                sums[row * 2 + r] = fmaf(w[2 * g], fmaxf(acc[4 * g + 2 * r], 0.0f), sums[row * 2 + r]);
                sums[row * 2 + r] = fmaf(w[2 * g + 1], fmaxf(acc[4 * g + 2 * r + 1], 0.0f), sums[row * 2 + r]);
            }
        }
        // Reduce-scatter over lane bit 0, then bit 1: each step a lane keeps half of
        // its sums and adds the partner's copy of them.
        const bool b = lane & 1, c = (lane >> 1) & 1;
        constexpr int kHalf = kSums / 2;
#pragma unroll
        for (int s = 0; s < kHalf; ++s) {
            const float low = sums[s], high = sums[s + kHalf];
            sums[s] = (b ? high : low) + __shfl_xor_sync(0xffffffffu, b ? low : high, 1);
        }
        if constexpr (kHalf >= 2) {
            constexpr int kQuarter = kHalf / 2;
#pragma unroll
            for (int s = 0; s < kQuarter; ++s) {
                const float low = sums[s], high = sums[s + kQuarter];
                out[s] = (c ? high : low) + __shfl_xor_sync(0xffffffffu, c ? low : high, 2);
            }
        } else {
            out[0] = sums[0] + __shfl_xor_sync(0xffffffffu, sums[0], 2);
        }
    }
};

// Four units: their producer warps make one warpgroup, which keeps
// kProducerRegisters and hands the rest of what the launch gave the CTA to the math
// warpgroups (640 threads start at 96 each; the math gets 112). Each side's call
// must come first in its own branch: ptxas sizes a region by the setmaxnreg that
// dominates it.
constexpr int kProducerRegisters = 32;

template <typename Out>
__device__ __forceinline__ void store_logit(Out* p, float v) {
    if constexpr (sizeof(Out) == 2) *p = __float2bfloat16_rn(v);
    else *p = v;
}

struct MqaLogitsArgs {
    const float* weights;  // [seq_len, H], rows weights_stride apart
    const int* ks;         // [seq_len]
    const int* ke;         // [seq_len]
    void* logits;          // rows logits_stride elements apart
    long long logits_stride;
    int seq_len, seq_len_kv, weights_stride;
    int compressed;        // column j - ks[i] instead of j (max_seqlen_k > 0)
    int width;             // logits' columns: nothing is written past them
    int num_blocks;        // ceil(seq_len / kQRows)
    int splits;            // parts each block's key range is cut into, one unit each
};

// The keys a block of query rows sees: [lo, hi), the union of its rows' ranges (clamped).
template <int kQRows>
__device__ __forceinline__ void block_range(const MqaLogitsArgs& args, int first_row, int& lo, int& hi) {
    lo = args.seq_len_kv;
    hi = 0;
#pragma unroll
    for (int q = 0; q < kQRows; ++q) {
        if (first_row + q >= args.seq_len) break;
        const int s = max(__ldg(args.ks + first_row + q), 0), e = min(__ldg(args.ke + first_row + q), args.seq_len_kv);
        if (s < e) {
            lo = min(lo, s);
            hi = max(hi, e);
        }
    }
}

// A unit's work: one part of one block's key range (parts of equal tile counts, so
// many small items even out the last wave), blocks from the last. Tiles start on a
// multiple of 64 keys: a tensor copy of the scales (their inner dimension) from an
// unaligned key faults with an illegal instruction.
struct UnitItem {
    int first_row, lo, tiles;  // no tiles: nothing to do
};
template <int kQRows, int kUnits>
__device__ __forceinline__ UnitItem unit_item(const MqaLogitsArgs& args, int unit) {
    const int item = args.num_blocks * args.splits - 1 - (static_cast<int>(blockIdx.x) * kUnits + unit);
    if (item < 0) return {0, 0, 0};
    const int block = item / args.splits, part = item % args.splits;
    const int first_row = block * kQRows;
    int lo, hi;
    block_range<kQRows>(args, first_row, lo, hi);
    lo = lo / kTileKeys * kTileKeys;
    const int block_tiles = hi > lo ? (hi - lo + kTileKeys - 1) / kTileKeys : 0;
    const int first_tile = part * block_tiles / args.splits;
    return {first_row, lo + first_tile * kTileKeys, (part + 1) * block_tiles / args.splits - first_tile};
}

template <int kDim, int kHeads, int kUnits, int kStages>
struct MqaLayout {
    static constexpr int kQBytes = kQHeads * kDim;
    static constexpr int kKeyBytes = kTileKeys * kDim;
    static constexpr int kScaleBytes = kTileKeys * 4;
    static constexpr int kQ = 0;
    static constexpr int kKeys = kQ + kUnits * kQBytes;
    static constexpr int kScales = kKeys + kUnits * kStages * kKeyBytes;
    static constexpr int kBarriers = kScales + kUnits * kStages * kScaleBytes;
    static constexpr int kBarriersPerUnit = 2 * kStages + 1;
    static constexpr int kBytes = kBarriers + kUnits * kBarriersPerUnit * 8;
    static_assert(kQBytes % 1024 == 0 && kKeyBytes % 1024 == 0, "tiles must stay 1024-byte aligned");
};

// q_map: e4m3 [seq_len * H, D], boxes of 128 rows; kv_map: e4m3 [seq_len_kv, D], boxes
// of 64 rows; sf_map: fp32 [1, seq_len_kv], boxes of 64; all with the D-byte swizzle
// (scales unswizzled). Threads: kUnits warpgroups, then kUnits producer warps.
template <int kDim, int kHeads, int kUnits, int kStages, typename Out>
__device__ __forceinline__ void mqa_logits(const TensorMap* q_map, const TensorMap* kv_map, const TensorMap* sf_map,
                                           const MqaLogitsArgs& args) {
    using Layout = MqaLayout<kDim, kHeads, kUnits, kStages>;
    using Sums = HeadSums<kQHeads, kHeads>;
    constexpr int kQRows = kQHeads / kHeads;
    static_assert(kUnits == 4, "the producer warps must make one whole warpgroup (setmaxnreg is per warpgroup)");
    extern __shared__ __align__(1024) unsigned char smem[];

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const bool producer = threadIdx.x >= kUnits * kMathThreads;
    const int unit = producer ? warp - kUnits * 4 : warp / 4;
    uint64_t* barriers = reinterpret_cast<uint64_t*>(smem + Layout::kBarriers) + unit * Layout::kBarriersPerUnit;
    uint64_t* full = barriers;
    uint64_t* empty = barriers + kStages;
    uint64_t* q_full = barriers + 2 * kStages;
    unsigned char* q_tile = smem + Layout::kQ + unit * Layout::kQBytes;
    unsigned char* keys = smem + Layout::kKeys + unit * kStages * Layout::kKeyBytes;
    float* scales = reinterpret_cast<float*>(smem + Layout::kScales) + unit * kStages * kTileKeys;

    if (producer && lane == 0) {
        for (int s = 0; s < kStages; ++s) {
            ptx::mbarrier_init(full + s, 1);
            ptx::mbarrier_init(empty + s, 4);  // one arrival per math warp
        }
        ptx::mbarrier_init(q_full, 1);
        ptx::fence_barrier_init();
    }
    __syncthreads();

    if (producer) {
        ptx::regs_dealloc<kProducerRegisters>();
        const UnitItem item = unit_item<kQRows, kUnits>(args, unit);
        if (lane != 0 || item.tiles == 0) return;
        ptx::tma_prefetch_descriptor(kv_map);
        ptx::mbarrier_arrive_expect_tx(q_full, Layout::kQBytes);
        ptx::tma_load_2d(q_tile, q_map, q_full, 0, item.first_row * kHeads);
        for (int t = 0; t < item.tiles; ++t) {
            const int s = t % kStages;
            ptx::mbarrier_wait(empty + s, ((t / kStages) & 1) ^ 1);
            ptx::mbarrier_arrive_expect_tx(full + s, Layout::kKeyBytes + Layout::kScaleBytes);
            ptx::tma_load_2d(keys + s * Layout::kKeyBytes, kv_map, full + s, 0, item.lo + t * kTileKeys);
            ptx::tma_load_2d(scales + s * kTileKeys, sf_map, full + s, item.lo + t * kTileKeys, 0);
        }
        return;
    }
    ptx::regs_alloc<ptx::claimable_math_registers(kUnits * (kMathThreads + 32), kProducerRegisters)>();
    const UnitItem item = unit_item<kQRows, kUnits>(args, unit);
    if (item.tiles == 0) return;
    const int first_row = item.first_row, lo = item.lo, tiles = item.tiles;

    // The thread's weights, and the key range of each query row it stores.
    float w[Sums::kWeights];
#pragma unroll
    for (int i = 0; i < Sums::kWeights; ++i) {
        const int row = first_row + Sums::row_of(i);
        w[i] = row < args.seq_len ? __ldg(args.weights + static_cast<long long>(row) * args.weights_stride +
                                          Sums::head_of(i, lane))
                                  : 0.0f;
    }
    // The row the thread stores (all its kept sums are one row's) and where: its
    // sum for key lo + 64 t + c0 (c0: the key's place in the tile) goes to column
    // first + 64 t of the row when that is below `columns`. Compressed logits (column
    // j - ks[i]) take the keys of the row's range. Plain ones take every key of the
    // tile below the width, as upstream's kernel writes them: outside the range a
    // value is unspecified (clean_logits, which runs after this kernel, writes -inf
    // there). Rows past seq_len take none.
    const int warp_in_unit = warp % 4;
    const int row = first_row + Sums::index_of(0, lane) / 2;
    const bool live = row < args.seq_len && Sums::stores(lane);
    const int start = args.compressed && live ? max(__ldg(args.ks + row), 0) : 0;
    const int first = lo + warp_in_unit * 16 + lane / 4 - start;
    const unsigned columns = !live ? 0u
                             : args.compressed ? max(min(min(__ldg(args.ke + row), args.seq_len_kv) - start, args.width), 0)
                                               : args.width;
    Out* row_logits = static_cast<Out*>(args.logits) + static_cast<long long>(row) * args.logits_stride;

    ptx::mbarrier_wait(q_full, 0);
    float acc[kQHeads / 2];
    for (int t = 0; t < tiles; ++t) {
        const int s = t % kStages;
        ptx::mbarrier_wait(full + s, (t / kStages) & 1);
        mma_tile<kDim, kQHeads>(keys + s * Layout::kKeyBytes, q_tile, acc);
        float key_scale[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) key_scale[r] = scales[s * kTileKeys + warp_in_unit * 16 + lane / 4 + 8 * r];
        __syncwarp();
        if (lane == 0) ptx::mbarrier_arrive(empty + s);

        float sums[Sums::kKept];
        Sums::run(acc, w, lane, sums);
#pragma unroll
        for (int k = 0; k < Sums::kKept; ++k) {
            const int r = Sums::index_of(k, lane) % 2;
            const int column = first + t * kTileKeys + 8 * r;
            if (static_cast<unsigned>(column) < columns)
                store_logit(row_logits + column, sums[k] * (r ? key_scale[1] : key_scale[0]));
        }
    }
}

// Row i of logits [rows, cols] (rows `stride` elements apart) gets -inf outside
// [ks[i], ke[i]) (ks absent: from 0), 16 bytes per thread and step.
template <typename Out, int kThreads>
__device__ __forceinline__ void clean_logits(Out* logits, const int* ks, const int* ke, int cols, long long stride) {
    constexpr int kPerVector = 16 / static_cast<int>(sizeof(Out));
    const int row = blockIdx.x;
    const int start = ks == nullptr ? 0 : min(max(__ldg(ks + row), 0), cols);
    const int end = max(min(__ldg(ke + row), cols), start);
    Out* out = logits + row * stride;
    const uint32_t pattern = sizeof(Out) == 2 ? 0xff80ff80u : 0xff800000u;
    const uint4 vector = make_uint4(pattern, pattern, pattern, pattern);
    for (int first = threadIdx.x * kPerVector; first < cols; first += kThreads * kPerVector) {
        if (first + kPerVector <= cols && (first + kPerVector <= start || first >= end)) {
            *reinterpret_cast<uint4*>(out + first) = vector;
        } else {
            for (int j = first; j < min(first + kPerVector, cols); ++j)
                if (j < start || j >= end) store_logit(out + j, negative_infinity());
        }
    }
}

}  // namespace deep_gemm::indexer
