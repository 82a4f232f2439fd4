#include "gemm.hpp"

#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "../../deep_gemm/include/deep_gemm/gemm_args.cuh"
#include "limits.hpp"
#include "tma.hpp"

namespace deep_gemm::kernels {
namespace {

constexpr int kMaxStages = 8;
// FP8 tiles of at most 32 columns run latency-bound (at M = 128 about 0.29 us per
// K-block whatever a stage's bytes): more stages in flight pay. Measured on H100
// (benchmarks/NOTES.md, v24): M = 128, N = 2112 / 4096, K = 7168 (128x16 in 11 stages,
// 128x32 in 10) +4% / +5%; M = 64 (64x16 / 64x32 in 16) +8% / +6%; 64x64 in 13
// stages was 1-3% slower than in 8.
constexpr int kMaxNarrowStages = 16;
constexpr int kNarrowBlockN = 32;
// FP8: divisors of B's 128-column scale block (one B scale per tile), and 256, two
// scale blocks in 64-column sub-tiles (see gemm.cuh). 256 columns read A half as
// often per FLOP; at M = 4096 on H200 (benchmarks/NOTES.md, v28) that measured
// +2-8% over 128 on five of DeepGEMM's six shapes, where the GPU runs at its power
// limit; at M = 128 5-50% slower (the tiles stream B and want more of them and more
// stages). Between them mixed (M = 1024-3072: +14% to -19% by shape, v29), which the
// cost model does not tell apart, so only GEMMs of kWideFP8MinRows rows or more (per
// group when masked) take them.
// (192 measured between 128 and 256, or under both; 96-176 lost on H100, v8b.)
const std::vector<int> kFP8BlockNs = {16, 32, 64, 128, 256};
constexpr int kWideFP8BlockN = 256;
constexpr int kWideFP8MinRows = 4096;
// BF16 accumulates in place (no second accumulator set), so 256 columns fit in
// registers, and has no scale blocks to respect: the in-between widths let the cost
// model avoid a nearly empty last wave (N = 2112: 176 fills 2.9 waves, 192 2.7,
// 256 only 2.2; measured at M = 4096, 176 is 4% faster than 192 once its last
// 48-column chunk is stored with TMA as well).
const std::vector<int> kBF16BlockNs = {16, 32, 64, 96, 128, 160, 176, 192, 224, 256};
// FP8 dense tiles may also be 192 rows: three math warpgroups, each with one
// temporary accumulator (registers), the other two warpgroups' MMAs covering a
// promotion. Per tile about as fast as 128 rows; they pay where they fill the waves
// better (M = 4096, N = 2112: 374 tiles of 192x128 are 2.8 waves where 544 of
// 128x128 are 4.1; 1199-1208 against 1087-1106 TFLOPS on H100).
constexpr int kWideBlockM = 192;

// The BLOCK_M candidates for tiles that see `rows` rows: one math warpgroup (64
// rows) when they fit, else two (128); FP8 dense also three (192), listed first so
// that 128 rows win the heuristic's exact ties. Grouped tiles must divide the
// 128-row alignment of contiguous segments.
std::vector<int> block_ms(InputType input, GemmType type, int rows, bool sfb_per_column) {
    if (rows <= 64) return {64};
    if (input == InputType::FP8 && type == GemmType::Dense && rows > 128 && !sfb_per_column)
        return {kWideBlockM, 128};
    return {128};
}

// Three math warpgroups have registers for at most 128 FP8 columns.
bool registers_fit(InputType input, int block_m, int block_n) {
    return !(input == InputType::FP8 && block_m == kWideBlockM && block_n > kScaleBlock);
}

int element_bytes(InputType input) { return input == InputType::FP8 ? 1 : 2; }

// Mirrors GemmLayout in gemm.cuh: optional staging for D, then per stage A,
// B, (FP8) A's scales, (1D1D) B's in a 128-byte slot and two barriers, then the split-K verdict.
constexpr int kSplitVerdictBytes = 16;
int stage_bytes(InputType input, int block_m, int block_n, bool sfb_per_column) {
    const int sfb_slot = sfb_per_column ? ceil_div(block_n * 4, 128) * 128 : 0;  // 128-byte aligned TMA writes
    return (block_m + block_n) * kBlockKBytes + (input == InputType::FP8 ? block_m * 4 : 0) + sfb_slot + 16;
}
// Per math warpgroup (64 rows), a ring of up to two chunk buffers of 128-byte rows
// (64 bf16 or 32 fp32 columns).
int staging_bytes(int block_m, int block_n, bool tma_store, OutputType output) {
    const int chunk_n = output == OutputType::BF16 ? 64 : 32;
    return tma_store ? block_m * 128 * std::min(ceil_div(block_n, chunk_n), 2) : 0;
}

GemmConfig make_config(InputType input, GemmType type, int block_m, int block_n, OutputType output, bool tma_store,
                       bool sfb_per_column) {
    const int max_stages = input == InputType::FP8 && block_n <= kNarrowBlockN ? kMaxNarrowStages : kMaxStages;
    const int stages = std::min(max_stages, (kMaxSharedBytes - kSplitVerdictBytes -
                                             staging_bytes(block_m, block_n, tma_store, output)) /
                                                stage_bytes(input, block_m, block_n, sfb_per_column));
    return {input, type, block_m, block_n, stages, output, tma_store, sfb_per_column};
}

// 1D1D promotes every column with its own scale, within one sub-tile of at most 128 columns.
const std::vector<int> k1D1DBlockNs = {16, 32, 64, 128};
// An MN-major B comes in atoms of 64 columns.
const std::vector<int> kMnMajorBBlockNs = {64, 128, 192, 256};
const std::vector<int>& block_ns(InputType input, bool sfb_per_column, bool mn_major_b = false) {
    if (sfb_per_column) return k1D1DBlockNs;
    if (mn_major_b) return kMnMajorBBlockNs;
    return input == InputType::FP8 ? kFP8BlockNs : kBF16BlockNs;
}

bool contains(const std::vector<int>& values, int value) {
    return std::find(values.begin(), values.end(), value) != values.end();
}

// Granlund and Montgomery's round-up method for deep_gemm::FastDivisor (gemm_args.cuh):
// n / d = (umulhi(n, magic) + n) >> shift for 0 <= n < 2^31, with shift = ceil(log2 d)
// and magic = floor(2^32 (2^shift - d) / d) + 1 (magic < 2^32 because 2^shift - d < d).
FastDivisor fast_divisor(uint32_t d) {  // d >= 1
    uint32_t shift = 0;
    while ((1ull << shift) < d) ++shift;
    const uint64_t magic = (((1ull << shift) - d) << 32) / d + 1;
    return {static_cast<uint32_t>(magic), shift};
}

constexpr int kRasterGroupRows = 32;  // gemm.cuh's kGroupM: tile-rows per group of its tile order

}  // namespace

// The TMA store writes rows whose stride is a 16-byte multiple (by columns the API
// makes D's strides so, whatever N): bf16 D of every GEMM type (masked kernels store
// from registers the warpgroups whose rows reach past their group's count), fp32 D
// of dense GEMMs.
bool stores_with_tma(GemmType type, int n, OutputType output) {
    if (output == OutputType::FP32) return type == GemmType::Dense && n % 4 == 0;
    return n % 8 == 0 || type == GemmType::GroupedColumns;
}

int GemmConfig::threads() const { return 128 * (block_m / 64 + 1); }
int GemmConfig::shared_bytes() const {
    return staging_bytes(block_m, block_n, tma_store, output) + stages * stage_bytes(input, block_m, block_n, sfb_per_column) +
           kSplitVerdictBytes;
}

jit::KernelSource GemmConfig::source() const {
    static const char* kTypeNames[] = {"Dense", "GroupedContiguous", "GroupedMasked", "GroupedColumns"};
    static const char* kTypeTags[] = {"", " contiguous", " masked", " columns"};
    const char* out_type = output == OutputType::BF16 ? "__nv_bfloat16" : "float";
    const std::string op =
        input == InputType::FP8 ? (sfb_per_column ? "fp8_gemm_nt_1d1d" : "fp8_gemm_nt") : "bf16_gemm_nt";
    const std::string tag = std::to_string(block_m) + "x" + std::to_string(block_n) + " s" + std::to_string(stages) +
                            (output == OutputType::BF16 ? " bf16" : " fp32") + kTypeTags[static_cast<int>(type)] +
                            (tma_store ? " tma-store" : "") + (mn_major_a ? " mn-a" : "") +
                            (mn_major_b ? " mn-b" : "");
    // The entry is named after the op, as profilers show it: upstream's tests and benchmarks
    // find kernels by name ("gemm_", "bf16_gemm") in their traces.
    const std::string entry = op + "_kernel";
    auto flag = [](bool value) { return std::string(value ? "true" : "false"); };
    const std::string shape = std::to_string(block_m) + ", " + std::to_string(block_n) + ", " + std::to_string(stages);
    const std::string layout = "GemmLayout<" + flag(input == InputType::FP8) + ", " + flag(sfb_per_column) + ", " +
                               shape + ", " + flag(tma_store) + ", " + (output == OutputType::BF16 ? "2" : "4") + ">";
    // What the host was built with, checked against the headers the JIT compiles: the
    // arguments' size (gemm_args.cuh is shared, so this catches headers of another build)
    // and the shared memory the launch asks for, which stage_bytes mirrors from GemmLayout.
    const std::string checks =
        "static_assert(sizeof(GemmArgs) == " + std::to_string(sizeof(GemmArgs)) +
        ", \"gemm_args.cuh differs from the one the deep_gemm runtime was built with\");\n"
        "static_assert(" + layout + "::kSharedBytes == " + std::to_string(shared_bytes()) +
        ", \"the host sizes shared memory differently from GemmLayout\");\n";
    std::string code =
        "#include <deep_gemm/gemm.cuh>\n"
        "using namespace deep_gemm;\n" + checks +
        "extern \"C\" __global__ void __launch_bounds__(" + std::to_string(threads()) + ", 1)\n"
        + entry + "(const __grid_constant__ TensorMap a, const __grid_constant__ TensorMap b,\n"
        "                 const __grid_constant__ TensorMap sfa, const __grid_constant__ TensorMap sfb,\n"
        "                 const __grid_constant__ TensorMap d_map, const __grid_constant__ TensorMap d_tail_map,\n"
        "                 const __grid_constant__ GemmArgs args) {\n"
        "    gemm_nt<" + flag(input == InputType::FP8) + ", " + flag(sfb_per_column) + ", GemmType::" +
        kTypeNames[static_cast<int>(type)] + ", " + shape + ", " + flag(tma_store) + ", " + out_type + ", " +
        flag(mn_major_a) + ", " + flag(mn_major_b) + ">(a, b, sfa, sfb, d_map, d_tail_map, args);\n"
        "}\n";
    return {op + "[" + tag + "]", std::move(code), entry};
}

// Tile heuristic. BLOCK_M follows the rows a tile sees: 64 (one math warpgroup)
// when they fit, else 128 (two warpgroups sharing each B tile), for FP8 dense also
// 192 (three); masked GEMMs use the caller's expected rows per group. Then two
// steps, each minimising the modelled time of the busiest SM, in
// K-blocks x BLOCK_M x (BLOCK_N + kTileOverheadN):
//   * the tile, whole tiles: a tile's MMA time grows with its area; the overhead term
//     stands for what every tile pays whatever its width (re-reading A's row panel,
//     the promotion's scale work, the epilogue), so narrow tiles win only when they
//     fill idle SMs, not when they merely shave a partial wave. Measured on H100 at
//     M = 4096: FP8 BLOCK_N 128 reaches 1200 TFLOPS where 16 (which pure wave
//     counting picks) falls under 250. Ties go to the fuller last wave (M = 128,
//     N = 24576: 64 fills 2.9 waves where 128 leaves 1.45, 395 against 364 TFLOPS),
//     then to the candidate listed later: the wider tile, and 128 rows over 192
//     (M = 192, N = 7168: 128x128 over 192x64). FP8 M = 4096, N = 2112: 192x128
//     tiles (2.8 waves) model cheaper than 128x128 (4.1) and 128x256 (2.2, the
//     last 8 columns in a tile of their own); N = 7168 takes 128x256 (6.8 waves
//     against 9.3 of 192x128, and 4096 rows fill 21.3 of 192).
//   * Split K (dense only): the tiles of that tiling's last partial wave may be cut
//     into K-slices that fill the SMs; a slice costs kSliceOverheadKBlocks more
//     (refilling the pipeline; the FP32 partials written and read back, all of them
//     by the one CTA that arrives last). On H100 (benchmarks/NOTES.md, v11) FP8
//     M = 4096, N = 2112 in 128x128 tiles (4.1 waves; 192x128 is chosen now) goes
//     975 -> 1070-1090 TFLOPS with its last 16 tiles in 8 slices. Every other split
//     measured was slower, among them wider tiles in slices instead of narrow whole
//     ones at M = 128 (FP8 128x128 in 2-8 slices against 128x16-64, also with the
//     slices summed by a second kernel, v20; BF16 128x96 and 128x224), which is why
//     the split only ever cuts the tiling chosen first. 128x256 tiles may go in row
//     halves instead (below), which need no partials.
// Stages fill shared memory, up to kMaxStages (kMaxNarrowStages for FP8 tiles of at
// most 32 columns, see above).
constexpr long kTileOverheadN = 64;
constexpr long kSliceOverheadKBlocks = 32;
constexpr int kMinSliceKBlocks = 4;
constexpr int kMaxSplits = 16;

namespace {

// Tuning overrides: DG_GEMM_BLOCK_M=128 / 192 forces that BLOCK_M where there is a
// choice (FP8 dense, more than 128 rows), DG_GEMM_BLOCK_N=64 that BLOCK_N,
// DG_GEMM_SPLIT_K=4 that many K-slices for the last partial wave's tiles (1: never split,
// neither into K-slices nor into row halves). Read at the first GEMM and again by
// reload_plan_overrides(), not per call: getenv scans the environment.
int env_int(const char* name) {
    const char* value = std::getenv(name);
    return value == nullptr ? 0 : std::atoi(value);
}

struct PlanOverrides {
    int block_m, block_n, split_k;
};

PlanOverrides read_plan_overrides() {
    return {env_int("DG_GEMM_BLOCK_M"), env_int("DG_GEMM_BLOCK_N"), env_int("DG_GEMM_SPLIT_K")};
}

// The overrides as one value, so a plan never mixes a reload's with the earlier ones.
// (Reloading while another thread changes the environment races inside libc.)
std::mutex plan_overrides_mutex;
PlanOverrides& current_plan_overrides() {
    static PlanOverrides overrides = read_plan_overrides();
    return overrides;
}
PlanOverrides plan_overrides() {
    const std::lock_guard<std::mutex> lock(plan_overrides_mutex);
    return current_plan_overrides();
}

// Whether each B tile is read by one CTA: all rows (of a group, when masked) fit in
// one tile-row. (Contiguous segments have their sizes on the GPU only.) Split K's
// slices read disjoint K-ranges of B. The kernel then loads B evict-first. Measured
// on H200 with L2 flushed by writes (its lines dirty), M = 128 (benchmarks/NOTES.md,
// v31): FP8 N x K = 24576x1536 / 7168x16384 / 4096x7168 / 7168x2048 +5% / +7% / +6%
// / +4%, 32768x512 -1%, 2112x7168 -3%; BF16 0% to +17%; M = 64, 4096x7168: FP8 +8%,
// BF16 +21%.
bool reads_b_once(const GemmShape& p, int block_m) {
    return p.type != GemmType::GroupedContiguous && p.m <= block_m;
}

}  // namespace

void reload_plan_overrides() {
    const PlanOverrides fresh = read_plan_overrides();
    const std::lock_guard<std::mutex> lock(plan_overrides_mutex);
    current_plan_overrides() = fresh;
}

GemmPlan plan_gemm(const GemmShape& p, int num_sms) {
    const bool masked = p.type == GemmType::GroupedMasked;
    const int rows = masked ? std::max(1, std::min(p.expected_m, p.m)) : p.m;
    const int groups = masked || p.type == GemmType::GroupedColumns ? p.num_groups : 1;
    const int k_blocks = std::max(1, ceil_div(p.k * element_bytes(p.input), kBlockKBytes));
    const std::vector<int> m_candidates = block_ms(p.input, p.type, rows, p.sfb_per_column);
    const std::vector<int>& n_candidates = block_ns(p.input, p.sfb_per_column, p.mn_major_b);

    const PlanOverrides overrides = plan_overrides();
    const int forced_block_m = overrides.block_m, forced_block_n = overrides.block_n;
    const int forced_splits = overrides.split_k;
    TORCH_CHECK_VALUE(forced_block_n <= 0 || contains(n_candidates, forced_block_n), "DG_GEMM_BLOCK_N=",
                      forced_block_n, " is not a BLOCK_N this kernel supports");
    TORCH_CHECK_VALUE(forced_splits >= 0 && forced_splits <= kMaxSplits, "DG_GEMM_SPLIT_K=", forced_splits,
                      " is outside 1..", kMaxSplits);
    // A forced BLOCK_M applies where the shape has a choice of heights.
    const bool force_m = forced_block_m > 0 && contains(m_candidates, forced_block_m);
    TORCH_CHECK_VALUE(forced_block_m <= 0 || forced_block_m == 128 || forced_block_m == kWideBlockM,
                      "DG_GEMM_BLOCK_M=", forced_block_m, " is not a BLOCK_M one can choose (128 or 192)");
    TORCH_CHECK_VALUE(!force_m || forced_block_n <= 0 || registers_fit(p.input, forced_block_m, forced_block_n),
                      "DG_GEMM_BLOCK_M=", forced_block_m, " with DG_GEMM_BLOCK_N=", forced_block_n,
                      ": three math warpgroups have registers for at most 128 FP8 columns");

    int block_m = 0, block_n = 0;
    long tiles = 0;  // of the chosen tiling
    long best_cost = -1;
    double best_fill = 0.0;
    for (int m_candidate : m_candidates) {
        if (force_m && m_candidate != forced_block_m) continue;
        for (int candidate : n_candidates) {
            if (forced_block_n > 0 && candidate != forced_block_n) continue;
            if (!registers_fit(p.input, m_candidate, candidate)) continue;
            if (p.input == InputType::FP8 && candidate == kWideFP8BlockN && rows < kWideFP8MinRows &&
                forced_block_n != kWideFP8BlockN)
                continue;
            const long count = static_cast<long>(ceil_div(rows, m_candidate)) * groups * ceil_div(p.n, candidate);
            const long waves = ceil_div<long>(count, num_sms);
            const long cost = waves * m_candidate * (candidate + kTileOverheadN);
            const double fill = static_cast<double>(count) / static_cast<double>(waves * num_sms);
            if (best_cost < 0 || cost < best_cost || (cost == best_cost && fill >= best_fill)) {
                best_cost = cost;
                best_fill = fill;
                block_m = m_candidate;
                block_n = candidate;
                tiles = count;
            }
        }
    }
    GemmPlan plan{make_config(p.input, p.type, block_m, block_n, p.output, stores_with_tma(p.type, p.n, p.output),
                              p.sfb_per_column)};
    plan.config.mn_major_a = p.mn_major_a;
    plan.config.mn_major_b = p.mn_major_b;
    plan.b_read_once = reads_b_once(p, block_m);

    // Splitting the last partial wave's tiles (into row halves or K-slices), costed in
    // K-blocks of the busiest SM (the tile is the same either way).
    const long full_waves = tiles / num_sms;
    const long tail = tiles - full_waves * num_sms;
    if (p.type != GemmType::Dense || tail == 0 || forced_splits == 1) return plan;
    long best_split_cost = (full_waves + 1) * k_blocks;
    // Row halves (128x256 tiles of more than one tile-row): the last wave's tiles cut
    // into their two 64-row halves, each computed by one warpgroup of its own CTA,
    // which has the SM's tensor cores to itself, so a half takes about half a tile's
    // time; no partials. H200 (benchmarks/NOTES.md v40): 4096x24576x1536 +1.1-1.6% (FP8),
    // +1.2% (BF16); 4096x24576x7168 +2.4% against its K-split.
    if (block_n == 256 && block_m == 128 && p.m > block_m && forced_splits == 0) {
        const long cost = full_waves * k_blocks + ceil_div<long>(2 * tail, num_sms) * ceil_div(k_blocks, 2);
        if (cost < best_split_cost) {
            best_split_cost = cost;
            plan.splits = 2;
            plan.split_tiles = static_cast<int>(tail);
            plan.row_halves = true;
        }
    }
    const int max_splits = std::min(kMaxSplits, k_blocks / kMinSliceKBlocks);
    for (int splits = 2; splits <= max_splits; ++splits) {
        if (forced_splits > 1 && splits != std::min(forced_splits, max_splits)) continue;
        const long cost =
            full_waves * k_blocks +
            ceil_div<long>(tail * splits, num_sms) * (ceil_div(k_blocks, splits) + kSliceOverheadKBlocks);
        if (forced_splits > 1 || cost < best_split_cost) {
            best_split_cost = cost;
            plan.splits = splits;
            plan.split_tiles = static_cast<int>(tail);
            plan.row_halves = false;
        }
    }
    return plan;
}

std::string GemmPlan::describe() const {
    std::string name = config.source().name;
    if (splits > 1)
        name += (row_halves ? " split-m " : " split-k ") + std::to_string(splits) + "x" + std::to_string(split_tiles);
    if (b_read_once) name += " b-read-once";
    return name;
}

std::vector<GemmConfig> all_gemm_configs() {
    std::vector<GemmConfig> configs;
    auto add = [&](InputType input, GemmType type, OutputType output, bool sfb_per_column) {
        for (int rows : {1, std::numeric_limits<int>::max()})  // every BLOCK_M
            for (int block_m : block_ms(input, type, rows, sfb_per_column))
                for (int block_n : block_ns(input, sfb_per_column)) {
                    if (!registers_fit(input, block_m, block_n)) continue;
                    configs.push_back(make_config(input, type, block_m, block_n, output, false, sfb_per_column));
                    if (stores_with_tma(type, 8, output))  // (N = 8 allows every output that can)
                        configs.push_back(make_config(input, type, block_m, block_n, output, true, sfb_per_column));
                }
    };
    for (InputType input : {InputType::FP8, InputType::BF16})
        for (GemmType type : {GemmType::Dense, GemmType::GroupedContiguous, GemmType::GroupedMasked})
            for (OutputType output : {OutputType::BF16, OutputType::FP32}) add(input, type, output, false);
    add(InputType::FP8, GemmType::Dense, OutputType::FP32, true);  // 1D1D: FP32 D (the API requires it)
    // By columns (fp8_einsum: FP8, bf16 or FP32 D; einsum 'bhr,hdr->bhd', and 'bhd,hdr->bhr'
    // with B MN-major: BF16, bf16 D), a bf16 D always stored with TMA.
    auto add_columns = [&](InputType input, OutputType output, bool mn_major_b) {
        for (int rows : {1, std::numeric_limits<int>::max()})
            for (int block_m : block_ms(input, GemmType::GroupedColumns, rows, false))
                for (int block_n : block_ns(input, false, mn_major_b)) {
                    GemmConfig config = make_config(input, GemmType::GroupedColumns, block_m, block_n, output,
                                                    output == OutputType::BF16, false);
                    config.mn_major_b = mn_major_b;
                    configs.push_back(config);
                }
    };
    add_columns(InputType::FP8, OutputType::BF16, false);
    add_columns(InputType::FP8, OutputType::FP32, false);
    add_columns(InputType::BF16, OutputType::BF16, false);
    add_columns(InputType::BF16, OutputType::BF16, true);
    // BF16 dense with MN-major operands (upstream's nn / tn / tt layouts), D always stored with TMA.
    for (const auto& [mn_a, mn_b] : {std::pair{true, false}, std::pair{false, true}, std::pair{true, true}})
        for (OutputType output : {OutputType::BF16, OutputType::FP32})
            for (int rows : {1, std::numeric_limits<int>::max()})
                for (int block_m : block_ms(InputType::BF16, GemmType::Dense, rows, false))
                    for (int block_n : block_ns(InputType::BF16, false, mn_b)) {
                        GemmConfig config = make_config(InputType::BF16, GemmType::Dense, block_m, block_n, output,
                                                        true, false);
                        config.mn_major_a = mn_a;
                        config.mn_major_b = mn_b;
                        configs.push_back(config);
                    }
    return configs;
}

namespace {

// Source generation and the JIT lookup happen once per configuration and device.
const jit::Kernel& kernel_for(const GemmConfig& config, int device) {
    const auto key = std::make_tuple(device, config.input, config.type, config.block_m, config.block_n, config.stages,
                                     config.output, config.tma_store, config.sfb_per_column, config.mn_major_a,
                                     config.mn_major_b);
    return jit::get_kernel_once(key, [&] { return config.source(); });
}

}  // namespace

void launch_gemm(const GemmProblem& p, int num_sms) {
    const OutputType output = p.d.scalar_type() == at::kBFloat16 ? OutputType::BF16 : OutputType::FP32;
    const GemmPlan plan = plan_gemm(
        {p.input, p.type, p.m, p.n, p.k, p.num_groups, p.expected_m, output, p.sfb_per_column, p.mn_major_a, p.mn_major_b},
        num_sms);
    const GemmConfig& config = plan.config;
    TORCH_INTERNAL_ASSERT(config.tma_store || !(p.mn_major_a || p.mn_major_b),
                          "MN-major operands need D stored with TMA (the API copies them otherwise)");
    const c10::cuda::CUDAGuard guard(p.d.device());
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(p.d.get_device()).stream();
    const jit::Kernel& kernel = kernel_for(config, p.d.get_device());

    const bool masked = p.type == GemmType::GroupedMasked;
    const bool columns = p.type == GemmType::GroupedColumns;
    const int a_rows = masked ? p.num_groups * p.m : p.m;
    const int b_rows = p.type == GemmType::Dense ? p.n : p.num_groups * p.n;
    const int elem = element_bytes(p.input);
    const CUtensorMapDataType dtype =
        p.input == InputType::FP8 ? CU_TENSOR_MAP_DATA_TYPE_UINT8 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
    const int box_k = kBlockKBytes / elem;
    // By columns, A [M, G, K] and D [M, G, N] in 3D maps whose boxes take one group,
    // so a box is clipped (loads zero-filled) at the group's K or N.
    auto dims_3d = [&](int inner) {
        return std::array<uint64_t, 3>{static_cast<uint64_t>(inner), static_cast<uint64_t>(p.num_groups),
                                       static_cast<uint64_t>(p.m)};
    };
    auto strides_3d = [](const at::Tensor& t) {
        return std::array<uint64_t, 2>{static_cast<uint64_t>(t.stride(1) * t.element_size()),
                                       static_cast<uint64_t>(t.stride(0) * t.element_size())};
    };
    const uint32_t box_m = static_cast<uint32_t>(config.block_m);
    // An MN-major operand: its [K, MN] rows (the view's stride along K apart), in boxes of
    // 64 K-rows x 64 MN-columns; by columns B [G, K, N], a box inside one group's K.
    auto mn_major_map = [&](const at::Tensor& t, int mn) {
        if (columns)
            return make_tma_3d(t.data_ptr(), dtype,
                               {static_cast<uint64_t>(mn), static_cast<uint64_t>(p.k),
                                static_cast<uint64_t>(p.num_groups)},
                               {static_cast<uint64_t>(t.stride(1)) * elem, static_cast<uint64_t>(t.stride(0)) * elem},
                               {64, 64, 1}, CU_TENSOR_MAP_SWIZZLE_128B);
        return make_tma_2d(t.data_ptr(), dtype, p.k, mn, static_cast<uint64_t>(t.stride(1)) * elem, 64, 64,
                           CU_TENSOR_MAP_SWIZZLE_128B);
    };
    CUtensorMap tmap_a = columns      ? make_tma_3d(p.a.data_ptr(), dtype, dims_3d(p.k), strides_3d(p.a),
                                                    {static_cast<uint32_t>(box_k), 1, box_m}, CU_TENSOR_MAP_SWIZZLE_128B)
                         : p.mn_major_a ? mn_major_map(p.a, p.m)
                                        : make_tma_2d(p.a.data_ptr(), dtype, a_rows, p.k, static_cast<uint64_t>(p.k) * elem,
                                                      config.block_m, box_k, CU_TENSOR_MAP_SWIZZLE_128B);
    // By columns B's rows may be padded (einsum's b [h, d, r] a slice of wider rows).
    const uint64_t b_row_bytes = static_cast<uint64_t>(columns ? p.b.stride(1) : p.k) * elem;
    CUtensorMap tmap_b = p.mn_major_b ? mn_major_map(p.b, p.n)
                                      : make_tma_2d(p.b.data_ptr(), dtype, b_rows, p.k, b_row_bytes, config.block_n,
                                                    box_k, CU_TENSOR_MAP_SWIZZLE_128B);
    CUtensorMap tmap_sfa{}, tmap_sfb{};
    if (p.input == InputType::FP8) {
        // sfa is MN-major: row i holds the scales of K-block i (of group i / ceil(K/128)
        // when masked) for all M rows, rows padded to 16 bytes; 1D1D's sfb likewise for N.
        const int k_blocks = ceil_div(p.k, kScaleBlock);
        auto mn_major_scales = [&](const at::Tensor& scales, int mn, int groups, int box) {
            const uint64_t row_bytes = static_cast<uint64_t>(ceil_div(mn, 4)) * 4 * sizeof(float);
            return make_tma_2d(scales.data_ptr(), CU_TENSOR_MAP_DATA_TYPE_FLOAT32, groups * k_blocks, mn, row_bytes, 1,
                               box, CU_TENSOR_MAP_SWIZZLE_NONE);
        };
        tmap_sfa = mn_major_scales(p.sfa, p.m, masked || columns ? p.num_groups : 1, config.block_m);
        if (p.sfb_per_column) tmap_sfb = mn_major_scales(p.sfb, p.n, 1, config.block_n);
    }
    // D's maps: boxes of 64 rows x 128 bytes (one swizzled chunk of a math warpgroup's
    // rows: 64 bf16 or 32 fp32 columns) and, when BLOCK_N is not a multiple of the
    // chunk, boxes of the last chunk's width, unswizzled (the kernel packs that chunk's
    // rows). Masked D is one map over [G * M, N]; the kernel stores only boxes inside a
    // group's counted rows.
    CUtensorMap tmap_d{}, tmap_d_tail{};
    const bool fp32_d = config.output == OutputType::FP32;
    const uint32_t chunk_n = fp32_d ? 32 : 64, tail_n = static_cast<uint32_t>(config.block_n) % chunk_n;
    if (config.tma_store && columns) {
        tmap_d = make_tma_3d(p.d.data_ptr(), CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, dims_3d(p.n), strides_3d(p.d),
                             {64, 1, 64}, CU_TENSOR_MAP_SWIZZLE_128B);
        if (tail_n != 0)
            tmap_d_tail = make_tma_3d(p.d.data_ptr(), CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, dims_3d(p.n), strides_3d(p.d),
                                      {tail_n, 1, 64}, CU_TENSOR_MAP_SWIZZLE_NONE);
    } else if (config.tma_store) {
        const CUtensorMapDataType d_type = fp32_d ? CU_TENSOR_MAP_DATA_TYPE_FLOAT32 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
        const uint64_t row_bytes = static_cast<uint64_t>(p.n) * p.d.element_size();
        tmap_d = make_tma_2d(p.d.data_ptr(), d_type, a_rows, p.n, row_bytes, 64, chunk_n, CU_TENSOR_MAP_SWIZZLE_128B);
        if (tail_n != 0)
            tmap_d_tail =
                make_tma_2d(p.d.data_ptr(), d_type, a_rows, p.n, row_bytes, 64, tail_n, CU_TENSOR_MAP_SWIZZLE_NONE);
    }
    // A dense C that is D itself (D += A B^T) is added by the TMA store, not loaded.
    const bool accumulate_d = p.type == GemmType::Dense && config.tma_store && p.c.has_value() &&
                              p.c->data_ptr() == p.d.data_ptr();
    TORCH_INTERNAL_ASSERT(!accumulate_d || fp32_d || p.input == InputType::BF16,
                          "FP8 with a bf16 D takes no C (its kernels have no adding store)");

    // Split K's workspace: the FP32 partial tiles, then one arrival count per split
    // tile, zeroed here. Freed on return: the caching allocator hands the memory to
    // later work on this stream only, which runs after the kernel.
    at::Tensor workspace;
    float* partials = nullptr;
    int* arrivals = nullptr;
    if (plan.splits > 1 && !plan.row_halves) {
        const int64_t partial_bytes =
            static_cast<int64_t>(plan.split_tiles) * plan.splits * config.block_m * config.block_n * sizeof(float);
        const int64_t arrival_bytes = static_cast<int64_t>(plan.split_tiles) * sizeof(int);
        workspace = at::empty({partial_bytes + arrival_bytes}, p.d.options().dtype(at::kByte));
        partials = reinterpret_cast<float*>(workspace.data_ptr());
        arrivals = reinterpret_cast<int*>(static_cast<char*>(workspace.data_ptr()) + partial_bytes);
        C10_CUDA_CHECK(cudaMemsetAsync(arrivals, 0, arrival_bytes, stream));
    }

    // The grid in tiles (masked: per group), and the divisors of the kernel's tile
    // order (dense, contiguous, by columns): the tiles of a group of tile-rows, and the
    // tile-rows of the last group (M, N > 0 here). By columns, the order's tile-columns
    // are every group's in turn.
    const int m_tiles = ceil_div(p.m, config.block_m), n_tiles = ceil_div(p.n, config.block_n);
    const int order_n_tiles = (columns ? p.num_groups : 1) * n_tiles;
    const int last_group_rows = m_tiles - (m_tiles - 1) / kRasterGroupRows * kRasterGroupRows;
    GemmArgs args{p.input == InputType::FP8 ? p.sfb.data_ptr<float>() : nullptr,
                    p.d.data_ptr(),
                    p.c.has_value() && !accumulate_d ? p.c->data_ptr() : nullptr,
                    p.grouping.defined() ? p.grouping.data_ptr<int>() : nullptr,
                    partials,
                    arrivals,
                    p.m,
                    p.n,
                    p.k,
                    p.num_groups,
                    plan.splits,
                    plan.split_tiles,
                    plan.row_halves,
                    plan.b_read_once,
                    fast_divisor(static_cast<uint32_t>(kRasterGroupRows * order_n_tiles)),
                    fast_divisor(static_cast<uint32_t>(last_group_rows)),
                    fast_divisor(static_cast<uint32_t>(n_tiles)),
                    columns ? p.d.stride(0) : 0,
                    columns ? p.d.stride(1) : 0,
                    accumulate_d};
    void* kernel_args[] = {&tmap_a, &tmap_b, &tmap_sfa, &tmap_sfb, &tmap_d, &tmap_d_tail, &args};

    // Persistent CTAs: at most one per SM, each looping over tiles and slices (masked:
    // the tile count depends on GPU-resident row counts, so bound it by the maximum).
    const long max_tiles = static_cast<long>(m_tiles) * (masked || columns ? p.num_groups : 1) * n_tiles +
                           static_cast<long>(plan.split_tiles) * (plan.splits - 1);
    jit::LaunchConfig launch;
    launch.grid = dim3(static_cast<unsigned>(std::max(1L, std::min<long>(num_sms, max_tiles))));
    launch.block = dim3(config.threads());
    launch.shared_bytes = config.shared_bytes();
    launch.stream = stream;
    kernel.launch(launch, kernel_args);
}

}  // namespace deep_gemm::kernels
