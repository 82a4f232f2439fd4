// The epilogue's staging, shared by gemm.cuh and einsum.cuh: a math warpgroup's
// WGMMA accumulators (m64nN: accumulator 4 i + 2 h + {0, 1} of a thread holds columns
// 8 i + 2 (lane % 4) + {0, 1} of row 16 warp + lane / 4 + 8 h) into shared memory for
// the TMA store.
#pragma once

#include <cuda_bf16.h>

namespace deep_gemm {

// One 64-column chunk of a math warpgroup's bf16 tile (64 rows) goes to shared
// memory in the layout TMA's 128-byte swizzle expects (64 x 128 bytes, the 16-byte
// units of row r permuted by r % 8, which also keeps the writes free of bank
// conflicts), then one thread stores it with TMA, asynchronously.
template <int kChunk>
__device__ __forceinline__ void stage_chunk_bf16(unsigned char* buffer, const float* accum, int warp, int lane) {
#pragma unroll
    for (int i = kChunk * 8; i < kChunk * 8 + 8; ++i) {
        const int unit = i % 8, within = (lane % 4) * 4;  // 16-byte unit of the 128-byte row, byte in it
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const int row = warp * 16 + lane / 4 + half * 8;
            *reinterpret_cast<__nv_bfloat162*>(buffer + row * 128 + ((unit ^ (row % 8)) * 16) + within) =
                __floats2bfloat162_rn(accum[i * 4 + half * 2], accum[i * 4 + half * 2 + 1]);
        }
    }
}

// stage_chunk_bf16 for an fp32 D: a chunk is 32 columns (128 bytes a row), a
// thread's column pair one 8-byte half of a 16-byte unit; a warp's 8 rows x 32 bytes
// fill every bank twice, the least two wavefronts can.
template <int kChunk>
__device__ __forceinline__ void stage_chunk_fp32(unsigned char* buffer, const float* accum, int warp, int lane) {
#pragma unroll
    for (int i = kChunk * 4; i < kChunk * 4 + 4; ++i) {
        const int unit = (i % 4) * 2 + (lane % 4) / 2, within = (lane % 2) * 8;
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const int row = warp * 16 + lane / 4 + half * 8;
            *reinterpret_cast<float2*>(buffer + row * 128 + ((unit ^ (row % 8)) * 16) + within) =
                make_float2(accum[i * 4 + half * 2], accum[i * 4 + half * 2 + 1]);
        }
    }
}

}  // namespace deep_gemm
