// The epilogue's staging, shared by gemm.cuh and einsum.cuh: a math warpgroup's
// WGMMA accumulators (m64nN: accumulator 4 i + 2 h + {0, 1} of a thread holds columns
// 8 i + 2 (lane % 4) + {0, 1} of row 16 warp + lane / 4 + 8 h) into shared memory for
// the TMA store.
#pragma once

#include <cuda_bf16.h>

namespace deep_gemm {

// A thread's two adjacent accumulators as two elements of D's type, at `p`.
template <typename OutT>
__device__ __forceinline__ void put_pair(unsigned char* p, float v0, float v1) {
    if constexpr (sizeof(OutT) == 4)
        *reinterpret_cast<float2*>(p) = make_float2(v0, v1);
    else
        *reinterpret_cast<__nv_bfloat162*>(p) = __floats2bfloat162_rn(v0, v1);
}

// One chunk of a math warpgroup's tile (64 rows of 128 bytes: 64 bf16 or 32 fp32 columns)
// goes to shared memory in the layout TMA's 128-byte swizzle expects (the 16-byte units of
// row r permuted by r % 8, which also keeps the writes free of bank conflicts: a warp's 8
// rows fill every bank the fewest times its bytes allow), then one thread stores it with
// TMA, asynchronously.
template <typename OutT, int kChunk>
__device__ __forceinline__ void stage_chunk(unsigned char* buffer, const float* accum, int warp, int lane) {
    constexpr int kGroups = 128 / static_cast<int>(sizeof(OutT)) / 8;  // 8-column accumulator groups per chunk
    constexpr int kGroupUnits = 8 * static_cast<int>(sizeof(OutT)) / 16;  // 16-byte units per group
    constexpr int kPairsPerUnit = 16 / (2 * static_cast<int>(sizeof(OutT)));
    // This thread's column pair: which unit of its group, and where in the unit.
    const int pair_unit = (lane % 4) / kPairsPerUnit;
    const int within = (lane % kPairsPerUnit) * 2 * static_cast<int>(sizeof(OutT));
#pragma unroll
    for (int i = kChunk * kGroups; i < (kChunk + 1) * kGroups; ++i) {
        const int unit = (i % kGroups) * kGroupUnits + pair_unit;  // of the 128-byte row
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const int row = warp * 16 + lane / 4 + half * 8;
            put_pair<OutT>(buffer + row * 128 + ((unit ^ (row % 8)) * 16) + within, accum[i * 4 + half * 2],
                           accum[i * 4 + half * 2 + 1]);
        }
    }
}

// The last chunk of a tile whose width is not a whole chunk (kWidth columns: for bf16 a
// multiple of 8, for fp32 of 16) goes to shared memory unswizzled, rows packed kWidth
// elements apart, for a second tensor map whose box is that narrow.
template <typename OutT, int kChunk, int kWidth>
__device__ __forceinline__ void stage_tail_chunk(unsigned char* buffer, const float* accum, int warp, int lane) {
    constexpr int kGroups = 128 / static_cast<int>(sizeof(OutT)) / 8;
#pragma unroll
    for (int i = kChunk * kGroups; i < kChunk * kGroups + kWidth / 8; ++i) {
        const int col = (i - kChunk * kGroups) * 8 + (lane % 4) * 2;
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const int row = warp * 16 + lane / 4 + half * 8;
            put_pair<OutT>(buffer + (row * kWidth + col) * static_cast<int>(sizeof(OutT)), accum[i * 4 + half * 2],
                           accum[i * 4 + half * 2 + 1]);
        }
    }
}

}  // namespace deep_gemm
