// The GEMM kernel's arguments beyond its tensor maps, passed by value: ONE definition
// for the kernel (gemm.cuh, compiled at run time by NVRTC) and for the host code that
// fills them (csrc/jit_kernels/gemm.cpp, compiled by the host compiler at build time),
// so the two cannot drift apart. The generated source also static_asserts the size the
// host was built with, which catches headers from another build of the package.
// It includes nothing: the host's <cstdint> and types.cuh's NVRTC stand-ins must not
// meet, so the widths are spelled with built-in types.
#pragma once

namespace deep_gemm {

// n / d for a divisor fixed at launch, as a multiply-high and a shift: a division
// by a run-time value is ~40 dependent instructions (through the float unit), which
// the tile boundary waits for. The host computes magic and shift (csrc/jit_kernels/
// gemm.cpp); valid for 0 <= n < 2^31.
struct FastDivisor {
    unsigned int magic, shift;
#ifdef __CUDACC__
    __device__ __forceinline__ int divide(int n) const {
        const unsigned int u = static_cast<unsigned int>(n);
        return static_cast<int>((__umulhi(u, magic) + u) >> shift);
    }
#endif
};
static_assert(sizeof(unsigned int) == 4, "FastDivisor needs 32-bit halves");

// Kernel arguments beyond the tensor maps (grouped B is [G * N, K]; masked A is
// [G * M, K], its scales [G * K/128, M] and D [G * M, N]; by columns, A is [M, G, K]
// and D [M, G, N], A's scales as masked).
struct GemmArgs {
    const float* sfb;      // FP8 1D2D: B's scales [G, ceil(N / 128), ceil(K / 128)] (1D1D: tmap_sfb)
    void* d;
    const void* c;         // D = acc + C, C of D's dtype (bf16 C: BF16 inputs only; may alias D)
    const int* grouping;   // contiguous: expert per row; masked: rows per group
    float* partials;       // split K: [split_tiles, splits] FP32 partial tiles
    int* arrivals;         // split K: slices done per split tile, zero at launch
    int m, n, k, num_groups;
    int splits, split_tiles;  // dense: the last split_tiles tiles are cut into splits K-slices,
    int row_halves;           // or (splits = 2, 128x256 tiles) into their two row halves
    int b_read_once;          // every B tile is read by one CTA (one tile-row per group)
    FastDivisor group_tiles, last_group_rows;  // dense, contiguous, by columns: TileOrder's divisors
    FastDivisor group_n_tiles;                 // by columns: a group's tile-columns (its N in BLOCK_Ns)
    long long d_row_stride, d_group_stride;    // by columns: D's (and C's) strides in elements
    int accumulate_d;  // dense D stored with TMA, C is D itself: each chunk added to D (c null);
                       // last, so the fields before keep the offsets (and paired loads) they had
};

}  // namespace deep_gemm
