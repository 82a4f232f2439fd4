// Scale-factor layout kernels (deep_gemm/utils/layout.py's transforms on the GPU).
//
// K-grouped UE8M0 packing: per-channel fp32 power-of-two scales of groups stacked
// along K, sf [sum_g rows_g, MN] row-major (rows_g = ceil(k_g / gran_k)), become
// int32 [sum_g ceil(rows_g / 4), MN] row-major, where a group's packed row p holds
// the exponent bytes of its scale rows 4p .. 4p + 3 (byte i from row 4p + i; rows
// past the group's end give 0). A CTA makes one packed row, or a run of its
// columns; a thread reads four consecutive columns of up to four scale rows
// (float4 loads where MN allows, else one column) and writes them packed, so
// loads and stores are coalesced along MN. The groups' row offsets arrive in the
// kernel's parameters: the host knows every k_g, so nothing is copied to the GPU.
//
// MN-major UE8M0 packing: fp32 power-of-two scales sf [G, MN, SF_K] with any strides
// become int32 [G, MN, ceil(SF_K / 4)] with strides (aligned_mn * ceil(SF_K / 4), 1,
// aligned_mn) (aligned_mn = MN rounded up to 4), int j of a row holding the bytes of
// its scales 4j .. 4j + 3 (0 past SF_K); the padding columns are not written. A thread
// makes one int, threads along MN (stores coalesced; loads too for MN-major input).
#pragma once

namespace deep_gemm::layout {

// Groups one launch takes (the host launches once per this many groups).
constexpr int kMaxPackGroups = 256;
constexpr int kPackThreads = 256;

struct KGroupedPackArgs {
    const float* sf;  // this launch's groups' scale rows, [sf_start[groups], mn]
    int* out;         // their packed rows, [packed_start[groups], mn]
    int mn;
    int groups;
    int vector_width;  // 4: mn % 4 == 0 and sf 16-byte aligned (float4 / int4 accesses); else 1
    // Group g's first packed row and first scale row, relative to out and sf;
    // entry `groups` is the total of each.
    int packed_start[kMaxPackGroups + 1];
    int sf_start[kMaxPackGroups + 1];
};

// The exponent byte of an fp32 scale (a power of two: UE8M0 is exact).
__device__ __forceinline__ unsigned ue8m0_byte(float x) { return (__float_as_uint(x) >> 23) & 0xffu; }

// Grid: x = packed rows of the launch, y = runs of blockDim.x * vector_width columns.
__device__ __forceinline__ void pack_k_grouped_ue8m0(const KGroupedPackArgs& args) {
    const int row = static_cast<int>(blockIdx.x);
    // The group holding `row`: the last g with packed_start[g] <= row (an empty group
    // starts where the next one does, and the search passes over it).
    int lo = 0, hi = args.groups - 1;
    while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        if (args.packed_start[mid] <= row) lo = mid;
        else hi = mid - 1;
    }
    const int first = args.sf_start[lo] + 4 * (row - args.packed_start[lo]);
    const int valid = min(4, args.sf_start[lo + 1] - first);  // 1 .. 4 scale rows
    const long long mn = args.mn;
    const float* src = args.sf + first * mn;
    int* dst = args.out + row * mn;
    const long long col = (static_cast<long long>(blockIdx.y) * blockDim.x + threadIdx.x) * args.vector_width;
    if (col >= mn) return;

    if (args.vector_width == 4) {
        unsigned packed[4] = {0u, 0u, 0u, 0u};
        float4 values[4];
#pragma unroll
        for (int i = 0; i < 4; ++i)
            if (i < valid) values[i] = __ldg(reinterpret_cast<const float4*>(src + i * mn + col));
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            if (i >= valid) continue;
            packed[0] |= ue8m0_byte(values[i].x) << (8 * i);
            packed[1] |= ue8m0_byte(values[i].y) << (8 * i);
            packed[2] |= ue8m0_byte(values[i].z) << (8 * i);
            packed[3] |= ue8m0_byte(values[i].w) << (8 * i);
        }
        *reinterpret_cast<int4*>(dst + col) = make_int4(static_cast<int>(packed[0]), static_cast<int>(packed[1]),
                                                        static_cast<int>(packed[2]), static_cast<int>(packed[3]));
    } else {
        float values[4];
#pragma unroll
        for (int i = 0; i < 4; ++i)
            if (i < valid) values[i] = __ldg(src + i * mn + col);
        unsigned packed = 0u;
#pragma unroll
        for (int i = 0; i < 4; ++i)
            if (i < valid) packed |= ue8m0_byte(values[i]) << (8 * i);
        dst[col] = static_cast<int>(packed);
    }
}

struct MnMajorPackArgs {
    const float* sf;
    int* out;
    long long sf_stride_group, sf_stride_mn, sf_stride_k;  // elements
    int mn, sf_k, packed_k, aligned_mn;
};

// Grid: x = runs of blockDim.x columns, y = packed int j, z = group.
__device__ __forceinline__ void transpose_and_pack_ue8m0(const MnMajorPackArgs& args) {
    const int col = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
    if (col >= args.mn) return;
    const int j = static_cast<int>(blockIdx.y), group = static_cast<int>(blockIdx.z);
    const int valid = min(4, args.sf_k - 4 * j);
    const float* src = args.sf + group * args.sf_stride_group + col * args.sf_stride_mn + 4 * j * args.sf_stride_k;
    float values[4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
        if (i < valid) values[i] = __ldg(src + i * args.sf_stride_k);
    unsigned packed = 0u;
#pragma unroll
    for (int i = 0; i < 4; ++i)
        if (i < valid) packed |= ue8m0_byte(values[i]) << (8 * i);
    const long long plane = static_cast<long long>(args.aligned_mn) * args.packed_k;
    args.out[group * plane + static_cast<long long>(j) * args.aligned_mn + col] = static_cast<int>(packed);
}

}  // namespace deep_gemm::layout
