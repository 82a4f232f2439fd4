// The sparse-attention indexer's logits, decode form, over a paged FP8 KV cache:
// for batch b, draft position n < next_n and key j < context_lens[b, n],
//   logits[b * next_n + n, j] = scale[j] * sum_h weights[b * next_n + n, h] * relu(q[b, n, h] . kv[j])
// where key j is row j % 64 of cache block block_table[b, j / 64]. A cache block is
// 64 rows of D e4m3 bytes followed by their 64 fp32 scales.
//
// Work is a sequence of (batch, 64-key tile) in batch order; the schedule
// (paged_mqa_schedule, once per batch of requests) cuts it into one part per CTA
// with equal tile counts: row c of schedule [parts + 1, 2] is where part c starts.
// The CTA's kUnits units (a math warpgroup and a producer warp each, as in
// mqa_logits.cuh) take the part's tiles in turn. A unit's producer streams tiles
// into its ring of stages and, whenever the batch changes, the batch's Q
// (next_n x H rows) and weights into a ring of two slots, so the next batch's
// loads overlap the current batch's last tiles. No host sync anywhere: the launch
// can be captured in a CUDA graph.
#pragma once

#include <deep_gemm/mqa_logits.cuh>

namespace deep_gemm::indexer {

struct PagedMqaLogitsArgs {
    const int* context_lens;  // [batch, next_n]
    const int* block_table;   // [batch, table_width], rows table_stride apart
    const int* schedule;      // [parts + 1, 2]: (batch, tile) where each part starts
    void* logits;             // [batch * next_n, max_context_len], rows logits_stride apart
    long long logits_stride;
    int batch, next_n, table_width, table_stride, max_context_len;
    int slot_bytes;           // one Q slot in shared memory: Q and the weights, a multiple of 1024
};

// Tiles of batch b: its longest context in 64-key tiles, within the logits' width and the block table.
__device__ __forceinline__ int batch_tiles(const PagedMqaLogitsArgs& args, int b) {
    int len = 0;
    for (int n = 0; n < args.next_n; ++n) len = max(len, __ldg(args.context_lens + b * args.next_n + n));
    len = min(len, args.max_context_len);
    return min((len + kTileKeys - 1) / kTileKeys, args.table_width);
}

// A position in the work sequence; step() moves to the next tile, over empty batches.
struct WorkCursor {
    int batch, tile, tiles;  // tiles: of `batch`
    __device__ __forceinline__ void settle(const PagedMqaLogitsArgs& args) {
        while (batch < args.batch && tile >= tiles) {
            ++batch;
            tile = 0;
            tiles = batch < args.batch ? batch_tiles(args, batch) : 0;
        }
    }
    __device__ __forceinline__ void start(const PagedMqaLogitsArgs& args, int b, int t) {
        batch = b;
        tile = t;
        tiles = b < args.batch ? batch_tiles(args, b) : 0;
        settle(args);
    }
    __device__ __forceinline__ void step(const PagedMqaLogitsArgs& args) {
        ++tile;
        settle(args);
    }
    // Whether the cursor is on a tile before (end_batch, end_tile).
    __device__ __forceinline__ bool before(const PagedMqaLogitsArgs& args, int end_batch, int end_tile) const {
        return batch < args.batch && (batch < end_batch || (batch == end_batch && tile < end_tile));
    }
};

// Shared memory of one CTA: per unit two Q slots (Q, then the weights, each slot
// slot_bytes, a multiple of 1024), then per unit kStages key tiles, their scales,
// and the barriers. csrc/jit_kernels/attention.cpp sizes it the same way.
template <int kDim, int kUnits, int kStages>
struct PagedLayout {
    static constexpr int kKeyBytes = kTileKeys * kDim;
    static constexpr int kScaleBytes = kTileKeys * 4;
    static constexpr int kBarriersPerUnit = 2 * kStages + 4;
    static_assert(kKeyBytes % 1024 == 0, "tiles must stay 1024-byte aligned");
    int keys, scales, barriers;
    __device__ __forceinline__ explicit PagedLayout(int slot_bytes)
        : keys(kUnits * 2 * slot_bytes),
          scales(keys + kUnits * kStages * kKeyBytes),
          barriers(scales + kUnits * kStages * kScaleBytes) {}
};

// q_map: e4m3 [batch * N, D] in boxes of N = next_n x H rows; w_map: fp32 [batch, N]
// in boxes of one row; kv_map: e4m3 [blocks, 64, D] (block stride from the cache) in
// boxes of one block; sf_map: fp32 [blocks, 64] (the same stride) in boxes of one
// block. The N columns go through the MMA kChunk at a time.
template <int kDim, int kHeads, int kChunk, int kUnits, int kStages, typename Out>
__device__ __forceinline__ void paged_mqa_logits(const TensorMap* q_map, const TensorMap* w_map,
                                                 const TensorMap* kv_map, const TensorMap* sf_map,
                                                 const PagedMqaLogitsArgs& args) {
    using Layout = PagedLayout<kDim, kUnits, kStages>;
    using Sums = HeadSums<kChunk, kHeads>;
    constexpr int kRowsPerChunk = kChunk / kHeads;
    static_assert(kChunk <= 128, "at most 128 columns per MMA (the accumulators' registers)");
    extern __shared__ __align__(1024) unsigned char smem[];

    const Layout layout(args.slot_bytes);
    const int columns = args.next_n * kHeads, chunks = columns / kChunk;
    const int q_bytes = columns * kDim;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const bool producer = threadIdx.x >= kUnits * kMathThreads;
    const int unit = producer ? warp - kUnits * 4 : warp / 4;
    uint64_t* barriers = reinterpret_cast<uint64_t*>(smem + layout.barriers) + unit * Layout::kBarriersPerUnit;
    uint64_t* full = barriers;
    uint64_t* empty = barriers + kStages;
    uint64_t* slot_full = barriers + 2 * kStages;
    uint64_t* slot_empty = barriers + 2 * kStages + 2;
    unsigned char* slots = smem + unit * 2 * args.slot_bytes;
    unsigned char* keys = smem + layout.keys + unit * kStages * Layout::kKeyBytes;
    float* scales = reinterpret_cast<float*>(smem + layout.scales) + unit * kStages * kTileKeys;

    if (producer && lane == 0) {
        for (int s = 0; s < kStages; ++s) {
            ptx::mbarrier_init(full + s, 1);
            ptx::mbarrier_init(empty + s, 4);  // one arrival per math warp
        }
        for (int s = 0; s < 2; ++s) {
            ptx::mbarrier_init(slot_full + s, 1);
            ptx::mbarrier_init(slot_empty + s, 4);
        }
        ptx::fence_barrier_init();
    }
    __syncthreads();

    const int part = blockIdx.x;
    const int end_batch = __ldg(args.schedule + 2 * (part + 1)), end_tile = __ldg(args.schedule + 2 * (part + 1) + 1);
    WorkCursor cursor;
    cursor.start(args, __ldg(args.schedule + 2 * part), __ldg(args.schedule + 2 * part + 1));
    for (int i = 0; i < unit; ++i) cursor.step(args);

    if (producer) {
        // The whole warp walks the tiles; lane 0 issues the copies. A tile's cache block
        // comes from the block table in global memory: one load per tile on lane 0 alone
        // put that load's latency in front of every tile. Instead the lanes fetch the
        // next 32 of this unit's tiles of the batch at once (lane i: tile first + i kUnits)
        // and the block is shuffled out of lane (tile - first) / kUnits.
        if (lane == 0) ptx::tma_prefetch_descriptor(kv_map);
        int batches = 0, loaded_batch = -1;
        int table_batch = -1, table_first = 0, table_block = 0;
        for (int t = 0; cursor.before(args, end_batch, end_tile); ++t) {
            int slot_in_table = (cursor.tile - table_first) / kUnits;
            if (cursor.batch != table_batch || slot_in_table >= 32) {
                table_batch = cursor.batch;
                table_first = cursor.tile;
                slot_in_table = 0;
                const int tile = cursor.tile + lane * kUnits;
                table_block = tile < cursor.tiles ? __ldg(args.block_table +
                                                          static_cast<long long>(cursor.batch) * args.table_stride + tile)
                                                  : 0;
            }
            const int block = __shfl_sync(0xffffffffu, table_block, slot_in_table);
            if (lane == 0) {
                if (cursor.batch != loaded_batch) {
                    const int slot = batches % 2;
                    ptx::mbarrier_wait(slot_empty + slot, ((batches / 2) & 1) ^ 1);
                    unsigned char* q = slots + slot * args.slot_bytes;
                    ptx::mbarrier_arrive_expect_tx(slot_full + slot, q_bytes + columns * 4);
                    ptx::tma_load_2d(q, q_map, slot_full + slot, 0, cursor.batch * columns);
                    ptx::tma_load_2d(q + q_bytes, w_map, slot_full + slot, 0, cursor.batch);
                    loaded_batch = cursor.batch;
                    ++batches;
                }
                const int s = t % kStages;
                ptx::mbarrier_wait(empty + s, ((t / kStages) & 1) ^ 1);
                ptx::mbarrier_arrive_expect_tx(full + s, Layout::kKeyBytes + Layout::kScaleBytes);
                ptx::tma_load_3d(keys + s * Layout::kKeyBytes, kv_map, full + s, 0, 0, block);
                ptx::tma_load_2d(scales + s * kTileKeys, sf_map, full + s, 0, block);
            }
            __syncwarp();
            for (int i = 0; i < kUnits; ++i) cursor.step(args);
        }
        return;
    }

    Out* logits = static_cast<Out*>(args.logits);
    const int warp_in_unit = warp % 4;
    int batches = 0, current_batch = -1;
    float acc[kChunk / 2];
    for (int t = 0; cursor.before(args, end_batch, end_tile); ++t) {
        if (cursor.batch != current_batch) {
            if (batches > 0) {  // done with the previous batch's slot
                __syncwarp();
                if (lane == 0) ptx::mbarrier_arrive(slot_empty + (batches - 1) % 2);
            }
            ptx::mbarrier_wait(slot_full + batches % 2, (batches / 2) & 1);
            current_batch = cursor.batch;
            ++batches;
        }
        const unsigned char* q = slots + ((batches - 1) % 2) * args.slot_bytes;
        const float* weights = reinterpret_cast<const float*>(q + q_bytes);
        const int* lens = args.context_lens + cursor.batch * args.next_n;
        const long long first_row = static_cast<long long>(cursor.batch) * args.next_n;
        const int first_key = cursor.tile * kTileKeys + warp_in_unit * 16 + lane / 4;
        const int s = t % kStages;
        ptx::mbarrier_wait(full + s, (t / kStages) & 1);
        float key_scale[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) key_scale[r] = scales[s * kTileKeys + warp_in_unit * 16 + lane / 4 + 8 * r];
        for (int c = 0; c < chunks; ++c) {
            int row_end[Sums::kKept];
#pragma unroll
            for (int k = 0; k < Sums::kKept; ++k)
                row_end[k] = Sums::stores(lane)
                                 ? min(__ldg(lens + c * kRowsPerChunk + Sums::index_of(k, lane) / 2), args.max_context_len)
                                 : 0;
            float w[Sums::kWeights];
#pragma unroll
            for (int i = 0; i < Sums::kWeights; i += 2) {
                const float2 pair = *reinterpret_cast<const float2*>(
                    weights + c * kChunk + Sums::row_of(i) * kHeads + Sums::head_of(i, lane));
                w[i] = pair.x;
                w[i + 1] = pair.y;
            }
            mma_tile<kDim, kChunk>(keys + s * Layout::kKeyBytes, q + c * kChunk * kDim, acc);
            if (c == chunks - 1) {  // the stage's last reader
                __syncwarp();
                if (lane == 0) ptx::mbarrier_arrive(empty + s);
            }
            float sums[Sums::kKept];
            Sums::run(acc, w, lane, sums);
#pragma unroll
            for (int k = 0; k < Sums::kKept; ++k) {
                const int index = Sums::index_of(k, lane), r = index % 2;
                const int key = first_key + 8 * r;
                if (key < row_end[k]) {
                    const long long row = first_row + c * kRowsPerChunk + index / 2;
                    store_logit(logits + row * args.logits_stride + key, sums[k] * (r ? key_scale[1] : key_scale[0]));
                }
            }
        }
        for (int i = 0; i < kUnits; ++i) cursor.step(args);
    }
}

// One CTA of kThreads: cuts the (batch, tile) sequence into `parts` parts of equal
// tile counts (part p starts at tile floor(p T / parts) of T) and writes where each
// starts, then (batch, 0) as the end.
template <int kThreads>
__device__ __forceinline__ void paged_mqa_schedule(const PagedMqaLogitsArgs& args, int parts, int* schedule) {
    static_assert(kThreads % 32 == 0 && kThreads <= 1024, "one CTA of whole warps");
    __shared__ long long warp_totals[kThreads / 32];
    __shared__ long long carry;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

    // Inclusive block-wide scan of one value per thread; returns it, sets `total`.
    const auto scan = [&](long long value, long long& total) {
#pragma unroll
        for (int d = 1; d < 32; d *= 2) {
            const long long other = __shfl_up_sync(0xffffffffu, value, d);
            if (lane >= d) value += other;
        }
        if (lane == 31) warp_totals[warp] = value;
        __syncthreads();
        long long before = 0;
        total = 0;
        for (int i = 0; i < kThreads / 32; ++i) {
            if (i < warp) before += warp_totals[i];
            total += warp_totals[i];
        }
        __syncthreads();
        return value + before;
    };

    long long total = 0;
    for (int first = 0; first < args.batch; first += kThreads) {
        const int b = first + threadIdx.x;
        long long chunk;
        scan(b < args.batch ? batch_tiles(args, b) : 0, chunk);
        total += chunk;
    }
    if (threadIdx.x == 0) carry = 0;
    __syncthreads();
    for (int first = 0; first < args.batch; first += kThreads) {
        const int b = first + threadIdx.x;
        const long long count = b < args.batch ? batch_tiles(args, b) : 0;
        long long chunk;
        const long long before = carry + scan(count, chunk) - count;
        if (count > 0) {
            // Parts p with before <= floor(p T / parts) < before + count start in batch b.
            const long long p_begin = (before * parts + total - 1) / total;
            const long long p_end = ((before + count) * parts + total - 1) / total;
            for (long long p = p_begin; p < p_end && p < parts; ++p) {
                schedule[2 * p] = b;
                schedule[2 * p + 1] = static_cast<int>(p * total / parts - before);
            }
        }
        __syncthreads();
        if (threadIdx.x == 0) carry += chunk;
        __syncthreads();
    }
    // No work at all: every part is empty. Then the end marker.
    if (total == 0)
        for (int p = threadIdx.x; p < parts; p += kThreads) {
            schedule[2 * p] = args.batch;
            schedule[2 * p + 1] = 0;
        }
    if (threadIdx.x == 0) {
        schedule[2 * parts] = args.batch;
        schedule[2 * parts + 1] = 0;
    }
}

}  // namespace deep_gemm::indexer
