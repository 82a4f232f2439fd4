// Host side of the GEMM kernel (deep_gemm/include/deep_gemm/gemm.cuh): pick a
// tile configuration for a problem, write the kernel's source for it, encode
// the TMA descriptors, launch.
#pragma once

#include <ATen/Tensor.h>

#include <optional>
#include <string>
#include <vector>

#include "../jit/runtime.hpp"

namespace deep_gemm::kernels {

// Mirrors gemm.cuh: K advances in 128-byte rows of A and B; FP8 scales cover 128
// elements along K (and, for B, along N).
constexpr int kBlockKBytes = 128;
constexpr int kScaleBlock = 128;
// Contiguous grouped layout: expert segments start at multiples of this many rows
// (a multiple of every grouped BLOCK_M, so a tile's first row names its expert;
// gemm.cuh static_asserts it).
constexpr int kContiguousAlignment = 128;

template <typename T>
constexpr T ceil_div(T a, T b) { return (a + b - 1) / b; }

enum class InputType { FP8, BF16 };
enum class OutputType { BF16, FP32 };
// Values match deep_gemm::GemmType in gemm.cuh.
// GroupedColumns: fp8_einsum's heads, groups side by side along A's K and D's N (gemm.cuh).
enum class GemmType { Dense = 0, GroupedContiguous = 1, GroupedMasked = 2, GroupedColumns = 3 };

struct GemmConfig {
    InputType input;
    GemmType type;
    int block_m;
    int block_n;
    int stages;
    OutputType output;
    bool tma_store;  // D staged in shared memory and stored with TMA (bf16; fp32 when dense)
    bool sfb_per_column = false;  // FP8 recipe (1, 1, 128) ("1D1D"): B scaled per column and K-block
    bool mn_major_a = false, mn_major_b = false;  // BF16 dense: the operand read MN-major (gemm.cuh)

    int threads() const;
    int shared_bytes() const;
    jit::KernelSource source() const;
};

// One GEMM to run; tensors are already validated by the API layer.
struct GemmProblem {
    InputType input;
    GemmType type;
    at::Tensor a, sfa, b, sfb, d;  // sfa / sfb undefined for BF16; 1D1D: sfb MN-major like sfa
                                   // by columns: a [M, G, K], d (and c) [M, G, N], strided
    std::optional<at::Tensor> c;
    at::Tensor grouping;  // contiguous: int32 expert per row; masked: int32 rows per group
    int m;                // rows of A (masked: per group)
    int n, k;
    int num_groups;       // 1 for dense
    int expected_m;       // masked: the typical rows per group, for the heuristic
    bool sfb_per_column = false;  // FP8 1D1D (dense)
    // BF16 dense: a (b) is an [M, K] ([N, K]) view with stride 1 along M (N), read in
    // place; its [K, M] rows 16-byte aligned, D stored with TMA (stores_with_tma).
    bool mn_major_a = false, mn_major_b = false;
};

// What the tile heuristic looks at (of a GemmProblem, without its tensors).
struct GemmShape {
    InputType input;
    GemmType type;
    int m, n, k;     // m: rows of A (masked: per group)
    int num_groups;  // 1 for dense
    int expected_m;  // masked: the typical rows per group
    OutputType output;
    bool sfb_per_column = false;  // FP8 1D1D (dense)
    bool mn_major_a = false, mn_major_b = false;
};

// A kernel and how to launch it. Split K (dense only): the last `split_tiles` tiles
// are cut along K into `splits` slices, computed by different CTAs and summed by
// the last one, or (row_halves, splits = 2) into their two 64-row halves, each
// computed and stored by its own CTA (see gemm.cuh). b_read_once: every B tile is
// read by one CTA, and the kernel streams B through L2 evict-first.
struct GemmPlan {
    GemmConfig config;
    int splits = 1;
    int split_tiles = 0;
    bool row_halves = false;  // the split tiles go in their two row halves, not K-slices
    bool b_read_once = false;

    // The kernel's name, then the split and B's streaming if any:
    // "fp8_gemm_nt[...] split-k 7x17 b-read-once", "fp8_gemm_nt[...] split-m 2x36".
    std::string describe() const;
};

// Heuristic choice of tile sizes and split for one problem (see the comment in the .cpp).
GemmPlan plan_gemm(const GemmShape& shape, int num_sms);

// Re-reads the DG_GEMM_BLOCK_M / DG_GEMM_BLOCK_N / DG_GEMM_SPLIT_K tuning overrides
// (read once otherwise), so a process can change the plan it forces between calls.
void reload_plan_overrides();

// Whether the kernel stores D [., n] of `output` with TMA for this GEMM type (given
// a 16-byte aligned D): the kernels that read MN-major operands need it.
bool stores_with_tma(GemmType type, int n, OutputType output);

// Every configuration plan_gemm can return: the CPU tests compile all of them.
std::vector<GemmConfig> all_gemm_configs();

void launch_gemm(const GemmProblem& problem, int num_sms);

}  // namespace deep_gemm::kernels
