#include "attention.hpp"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <climits>
#include <iterator>
#include <set>
#include <string>
#include <tuple>

#include "limits.hpp"
#include "tma.hpp"

namespace deep_gemm::kernels {
namespace {

// Mirrors mqa_logits.cuh / paged_mqa_logits.cuh (the generated sources static_assert
// the argument structs' sizes against these).
constexpr int kTileKeys = 64;
constexpr int kQHeads = 128;
constexpr int kMathThreads = 128;
// Dense: four units, 16 math warps per SM, as upstream's four math warpgroups. A
// warpgroup's tiles are latency-bound (its MMA, then its head sums), so the SM's rate
// grows with the warpgroups it holds; the kernel moves the producer warpgroup's
// registers to the math warpgroups.
constexpr int kDenseUnits = 4;
// Paged: three units where their shared memory fits (next_n x heads <= 128 columns at
// D = 128), else two (Q slots for up to 256 columns fit twice). Three keep 12 math
// warps per SM in flight; four would spill (96 registers).
constexpr int kPagedUnitChoices[] = {3, 2};
constexpr int kStages = 4;
constexpr int kCleanThreads = 256;
constexpr int kScheduleThreads = 1024;

struct MqaLogitsArgs {
    const float* weights;
    const int* ks;
    const int* ke;
    void* logits;
    long long logits_stride;
    int seq_len, seq_len_kv, weights_stride;
    int compressed;
    int width;
    int num_blocks;
    int splits;
};

struct PagedMqaLogitsArgs {
    const int* context_lens;
    const int* block_table;
    const int* schedule;
    void* logits;
    long long logits_stride;
    int batch, next_n, table_width, table_stride, max_context_len;
    int slot_bytes;
};

int threads(int units) { return units * (kMathThreads + 32); }
const char* out_type(bool bf16) { return bf16 ? "__nv_bfloat16" : "float"; }
const char* out_tag(bool bf16) { return bf16 ? "bf16" : "fp32"; }

CUtensorMapSwizzle swizzle_for(int row_bytes) {
    return row_bytes == 128 ? CU_TENSOR_MAP_SWIZZLE_128B
                            : (row_bytes == 64 ? CU_TENSOR_MAP_SWIZZLE_64B : CU_TENSOR_MAP_SWIZZLE_32B);
}

int align_to(int x, int to) { return (x + to - 1) / to * to; }

int dense_shared_bytes(int dim) {
    const int q = kQHeads * dim, keys = kTileKeys * dim, scales = kTileKeys * 4;
    return kDenseUnits * (q + kStages * (keys + scales) + (2 * kStages + 1) * 8);
}

int paged_slot_bytes(int columns, int dim) { return align_to(columns * dim + columns * 4, 1024); }
int paged_shared_bytes(int columns, int dim, int units) {
    return units * (2 * paged_slot_bytes(columns, dim) + kStages * (kTileKeys * dim + kTileKeys * 4) +
                    (2 * kStages + 4) * 8);
}

jit::KernelSource mqa_logits_source(int dim, int heads, bool bf16) {
    std::string code =
        "#include <deep_gemm/mqa_logits.cuh>\n"
        "using namespace deep_gemm;\n"
        + jit::static_assert_size("indexer::MqaLogitsArgs", sizeof(MqaLogitsArgs)) +
        "extern \"C\" __global__ void __launch_bounds__(" + std::to_string(threads(kDenseUnits)) + ", 1)\n"
        "deep_gemm_mqa_logits(const __grid_constant__ TensorMap q_map, const __grid_constant__ TensorMap kv_map,\n"
        "                     const __grid_constant__ TensorMap sf_map, const __grid_constant__ indexer::MqaLogitsArgs args) {\n"
        "    indexer::mqa_logits<" + std::to_string(dim) + ", " + std::to_string(heads) + ", " +
        std::to_string(kDenseUnits) + ", " + std::to_string(kStages) + ", " + out_type(bf16) +
        ">(&q_map, &kv_map, &sf_map, args);\n"
        "}\n";
    return {"mqa_logits[d" + std::to_string(dim) + " h" + std::to_string(heads) + " " + out_tag(bf16) + "]",
            std::move(code), "deep_gemm_mqa_logits"};
}

jit::KernelSource clean_logits_source(bool bf16) {
    std::string code =
        "#include <deep_gemm/mqa_logits.cuh>\n"
        "using namespace deep_gemm;\n"
        "extern \"C\" __global__ void __launch_bounds__(" + std::to_string(kCleanThreads) + ", 1)\n"
        "deep_gemm_clean_logits(" + out_type(bf16) + "* logits, const int* ks, const int* ke, int cols, long long stride) {\n"
        "    indexer::clean_logits<" + out_type(bf16) + ", " + std::to_string(kCleanThreads) +
        ">(logits, ks, ke, cols, stride);\n"
        "}\n";
    return {std::string("clean_logits[") + out_tag(bf16) + "]", std::move(code), "deep_gemm_clean_logits"};
}

int paged_units(int columns, int dim) {
    for (int units : kPagedUnitChoices)
        if (paged_shared_bytes(columns, dim, units) <= kMaxSharedBytes) return units;
    return kPagedUnitChoices[std::size(kPagedUnitChoices) - 1];
}

jit::KernelSource paged_mqa_logits_source(int dim, int heads, int chunk, int units, bool bf16) {
    std::string code =
        "#include <deep_gemm/paged_mqa_logits.cuh>\n"
        "using namespace deep_gemm;\n"
        + jit::static_assert_size("indexer::PagedMqaLogitsArgs", sizeof(PagedMqaLogitsArgs)) +
        "extern \"C\" __global__ void __launch_bounds__(" + std::to_string(threads(units)) + ", 1)\n"
        "deep_gemm_paged_mqa_logits(const __grid_constant__ TensorMap q_map, const __grid_constant__ TensorMap w_map,\n"
        "                           const __grid_constant__ TensorMap kv_map, const __grid_constant__ TensorMap sf_map,\n"
        "                           const __grid_constant__ indexer::PagedMqaLogitsArgs args) {\n"
        "    indexer::paged_mqa_logits<" + std::to_string(dim) + ", " + std::to_string(heads) + ", " +
        std::to_string(chunk) + ", " + std::to_string(units) + ", " + std::to_string(kStages) + ", " +
        out_type(bf16) + ">(&q_map, &w_map, &kv_map, &sf_map, args);\n"
        "}\n";
    return {"paged_mqa_logits[d" + std::to_string(dim) + " h" + std::to_string(heads) + " c" + std::to_string(chunk) +
                " u" + std::to_string(units) + " " + out_tag(bf16) + "]",
            std::move(code), "deep_gemm_paged_mqa_logits"};
}

jit::KernelSource paged_mqa_schedule_source() {
    std::string code =
        "#include <deep_gemm/paged_mqa_logits.cuh>\n"
        "using namespace deep_gemm;\n"
        + jit::static_assert_size("indexer::PagedMqaLogitsArgs", sizeof(PagedMqaLogitsArgs)) +
        "extern \"C\" __global__ void __launch_bounds__(" + std::to_string(kScheduleThreads) + ", 1)\n"
        "deep_gemm_paged_mqa_logits_metadata(const __grid_constant__ indexer::PagedMqaLogitsArgs args, int parts,\n"
        "                                    int* schedule) {\n"
        "    indexer::paged_mqa_schedule<" + std::to_string(kScheduleThreads) + ">(args, parts, schedule);\n"
        "}\n";
    return {"paged_mqa_logits_metadata", std::move(code), "deep_gemm_paged_mqa_logits_metadata"};
}

cudaStream_t current_stream(const at::Tensor& t) { return c10::cuda::getCurrentCUDAStream(t.get_device()).stream(); }

}  // namespace

std::vector<jit::KernelSource> attention_kernel_sources() {
    std::vector<jit::KernelSource> sources;
    for (bool bf16 : {false, true}) {
        for (int dim : {32, 64, 128}) {
            for (int heads : {32, 64}) {
                sources.push_back(mqa_logits_source(dim, heads, bf16));
                std::set<std::pair<int, int>> paged;  // (chunk, units) over every next_n a launch takes
                for (int columns = heads; columns <= kMaxPagedColumns; columns += heads)
                    paged.emplace(paged_mqa_chunk(columns), paged_units(columns, dim));
                for (const auto& [chunk, units] : paged)
                    sources.push_back(paged_mqa_logits_source(dim, heads, chunk, units, bf16));
            }
        }
        sources.push_back(clean_logits_source(bf16));
    }
    sources.push_back(paged_mqa_schedule_source());
    return sources;
}

namespace {
int mqa_logits_splits(int num_blocks, int seq_len_kv, int num_sms) {
    // Whole blocks come in ceil(blocks / units) CTAs: 1280 equal blocks on 132 SMs of 4
    // units are 2.4 waves, the last one 40% full. Parts of at least kMinPartTiles tiles
    // (each re-reads its block's Q, a few percent of its keys' bytes) until there are
    // kWaves waves' worth of items.
    constexpr int kWaves = 8, kMinPartTiles = 16;
    const int slots = std::max(num_sms, 1) * kDenseUnits;
    const int max_parts = std::max(1, (seq_len_kv + kTileKeys - 1) / kTileKeys / kMinPartTiles);
    const long long wanted = (static_cast<long long>(kWaves) * slots + num_blocks - 1) / num_blocks;
    return static_cast<int>(std::clamp<long long>(wanted, 1, max_parts));
}
}  // namespace

int paged_mqa_chunk(int columns) { return columns % 128 == 0 ? 128 : (columns % 64 == 0 ? 64 : 32); }

void launch_mqa_logits(const MqaLogitsProblem& p) {
    const int seq_len = static_cast<int>(p.q.size(0)), heads = static_cast<int>(p.q.size(1));
    const int dim = static_cast<int>(p.q.size(2)), seq_len_kv = static_cast<int>(p.kv.size(0));
    const bool bf16 = p.logits.scalar_type() == at::kBFloat16;
    const int device = p.q.get_device();
    const c10::cuda::CUDAGuard guard(p.q.device());
    const jit::Kernel& kernel = jit::get_kernel_once(std::make_tuple(device, dim, heads, bf16),
                                                     [&] { return mqa_logits_source(dim, heads, bf16); });

    const CUtensorMapSwizzle swizzle = swizzle_for(dim);
    CUtensorMap q_map = make_tma_2d(p.q.data_ptr(), CU_TENSOR_MAP_DATA_TYPE_UINT8, static_cast<uint64_t>(seq_len) * heads,
                                    dim, dim, kQHeads, dim, swizzle);
    CUtensorMap kv_map = make_tma_2d(p.kv.data_ptr(), CU_TENSOR_MAP_DATA_TYPE_UINT8, seq_len_kv, dim, dim, kTileKeys,
                                     dim, swizzle);
    CUtensorMap sf_map = make_tma_2d(p.kv_scales.data_ptr(), CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 1, seq_len_kv,
                                     static_cast<uint64_t>(align_to(seq_len_kv, 4)) * 4, 1, kTileKeys,
                                     CU_TENSOR_MAP_SWIZZLE_NONE);
    const int q_rows = kQHeads / heads;
    const int num_blocks = (seq_len + q_rows - 1) / q_rows;
    const int splits = mqa_logits_splits(num_blocks, seq_len_kv, p.num_sms);
    MqaLogitsArgs args{p.weights.data_ptr<float>(), p.ks.data_ptr<int>(), p.ke.data_ptr<int>(), p.logits.data_ptr(),
                       static_cast<long long>(p.logits.stride(0)), seq_len, seq_len_kv,
                       static_cast<int>(p.weights.stride(0)), p.compressed ? 1 : 0,
                       static_cast<int>(p.logits.size(1)), num_blocks, splits};
    void* kernel_args[] = {&q_map, &kv_map, &sf_map, &args};
    jit::LaunchConfig launch;
    launch.grid = dim3(static_cast<unsigned>((static_cast<long long>(num_blocks) * splits + kDenseUnits - 1) / kDenseUnits));
    launch.block = dim3(threads(kDenseUnits));
    launch.shared_bytes = dense_shared_bytes(dim);
    launch.stream = current_stream(p.q);
    kernel.launch(launch, kernel_args);
}

void launch_clean_logits(const at::Tensor& logits, const at::Tensor& ks, const at::Tensor& ke) {
    const bool bf16 = logits.scalar_type() == at::kBFloat16;
    const int device = logits.get_device();
    const c10::cuda::CUDAGuard guard(logits.device());
    const jit::Kernel& kernel =
        jit::get_kernel_once(std::make_pair(device, bf16), [&] { return clean_logits_source(bf16); });
    void* data = logits.data_ptr();
    const int* ks_ptr = ks.defined() ? ks.data_ptr<int>() : nullptr;
    const int* ke_ptr = ke.data_ptr<int>();
    int cols = static_cast<int>(logits.size(1));
    long long stride = logits.stride(0);
    void* kernel_args[] = {&data, &ks_ptr, &ke_ptr, &cols, &stride};
    jit::LaunchConfig launch;
    launch.grid = dim3(static_cast<unsigned>(logits.size(0)));
    launch.block = dim3(kCleanThreads);
    launch.stream = current_stream(logits);
    kernel.launch(launch, kernel_args);
}

void launch_paged_mqa_logits(const PagedMqaLogitsProblem& p) {
    const int batch = static_cast<int>(p.q.size(0)), next_n = static_cast<int>(p.q.size(1));
    const int heads = static_cast<int>(p.q.size(2)), dim = static_cast<int>(p.q.size(3));
    const int columns = next_n * heads, chunk = paged_mqa_chunk(columns), units = paged_units(columns, dim);
    const int blocks = static_cast<int>(p.kv_cache.size(0));
    const uint64_t block_stride = static_cast<uint64_t>(p.kv_cache.stride(0));
    const bool bf16 = p.logits.scalar_type() == at::kBFloat16;
    const int device = p.q.get_device();
    const c10::cuda::CUDAGuard guard(p.q.device());
    const jit::Kernel& kernel = jit::get_kernel_once(std::make_tuple(device, dim, heads, chunk, units, bf16), [&] {
        return paged_mqa_logits_source(dim, heads, chunk, units, bf16);
    });

    const CUtensorMapSwizzle swizzle = swizzle_for(dim);
    auto* cache = static_cast<unsigned char*>(p.kv_cache.data_ptr());
    CUtensorMap q_map = make_tma_2d(p.q.data_ptr(), CU_TENSOR_MAP_DATA_TYPE_UINT8,
                                    static_cast<uint64_t>(batch) * columns, dim, dim, columns, dim, swizzle);
    CUtensorMap w_map = make_tma_2d(p.weights.data_ptr(), CU_TENSOR_MAP_DATA_TYPE_FLOAT32, batch, columns,
                                    static_cast<uint64_t>(columns) * 4, 1, columns, CU_TENSOR_MAP_SWIZZLE_NONE);
    // [blocks, 64, D] bytes, one block per box.
    CUtensorMap kv_map = make_tma_3d(cache, CU_TENSOR_MAP_DATA_TYPE_UINT8,
                                     {static_cast<uint64_t>(dim), kTileKeys, static_cast<uint64_t>(blocks)},
                                     {static_cast<uint64_t>(dim), block_stride},
                                     {static_cast<uint32_t>(dim), kTileKeys, 1}, swizzle);
    CUtensorMap sf_map = make_tma_2d(cache + kTileKeys * dim, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, blocks, kTileKeys,
                                     block_stride, 1, kTileKeys, CU_TENSOR_MAP_SWIZZLE_NONE);
    PagedMqaLogitsArgs args{p.context_lens.data_ptr<int>(),
                            p.block_table.data_ptr<int>(),
                            p.schedule.data_ptr<int>(),
                            p.logits.data_ptr(),
                            static_cast<long long>(p.logits.stride(0)),
                            batch,
                            next_n,
                            static_cast<int>(p.block_table.size(1)),
                            static_cast<int>(p.block_table.stride(0)),
                            static_cast<int>(p.logits.size(1)),
                            paged_slot_bytes(columns, dim)};
    void* kernel_args[] = {&q_map, &w_map, &kv_map, &sf_map, &args};
    jit::LaunchConfig launch;
    launch.grid = dim3(static_cast<unsigned>(p.schedule.size(0) - 1));
    launch.block = dim3(threads(units));
    launch.shared_bytes = paged_shared_bytes(columns, dim, units);
    launch.stream = current_stream(p.q);
    kernel.launch(launch, kernel_args);
}

void launch_paged_mqa_schedule(const at::Tensor& context_lens, const at::Tensor& schedule) {
    const int device = context_lens.get_device();
    const c10::cuda::CUDAGuard guard(context_lens.device());
    const jit::Kernel& kernel = jit::get_kernel_once(device, [] { return paged_mqa_schedule_source(); });
    // Only the lengths matter here; the logits kernel clamps to its table and width.
    PagedMqaLogitsArgs args{context_lens.data_ptr<int>(),
                            nullptr,
                            nullptr,
                            nullptr,
                            0,
                            static_cast<int>(context_lens.size(0)),
                            static_cast<int>(context_lens.size(1)),
                            INT_MAX,
                            0,
                            1 << 30,
                            0};
    int parts = static_cast<int>(schedule.size(0) - 1);
    int* out = schedule.data_ptr<int>();
    void* kernel_args[] = {&args, &parts, &out};
    jit::LaunchConfig launch;
    launch.grid = dim3(1);
    launch.block = dim3(kScheduleThreads);
    launch.stream = current_stream(context_lens);
    kernel.launch(launch, kernel_args);
}

}  // namespace deep_gemm::kernels
