#include "fp8_gemm.hpp"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <array>
#include <mutex>
#include <unordered_map>

#include "tma.hpp"

namespace deep_gemm::kernels {
namespace {

constexpr int kBlockK = 128;
// Largest dynamic shared memory a Hopper CTA may opt into (227 KiB).
constexpr int kMaxSharedBytes = 232448;
constexpr int kMaxStages = 8;
// BLOCK_N above 192 would need more than 232 registers per math thread for the
// two accumulator sets (2 x BLOCK_N / 2 floats) and spill.
constexpr std::array<int, 6> kBlockNs = {32, 64, 96, 128, 160, 192};
constexpr std::array<int, 2> kBlockMs = {64, 128};

int ceil_div(int a, int b) { return (a + b - 1) / b; }

// Mirrors FP8GemmLayout in deep_gemm/include/deep_gemm/fp8_gemm.cuh.
int stage_bytes(int block_m, int block_n) { return block_m * kBlockK + block_n * kBlockK + block_m * 4; }
int max_stages(int block_m, int block_n) {
    return std::min(kMaxStages, kMaxSharedBytes / (stage_bytes(block_m, block_n) + 16));
}

FP8GemmConfig make_config(int block_m, int block_n, OutputType output) {
    return {block_m, block_n, max_stages(block_m, block_n), output};
}

}  // namespace

int FP8GemmConfig::threads() const { return 128 * (block_m / 64 + 1); }
int FP8GemmConfig::shared_bytes() const { return stages * (stage_bytes(block_m, block_n) + 16); }

jit::KernelSource FP8GemmConfig::source() const {
    const char* out_type = output == OutputType::BF16 ? "__nv_bfloat16" : "float";
    const std::string tag = std::to_string(block_m) + "x" + std::to_string(block_n) + "x" + std::to_string(kBlockK) +
                            " s" + std::to_string(stages) + (output == OutputType::BF16 ? " bf16" : " fp32");
    std::string code =
        "#include <deep_gemm/fp8_gemm.cuh>\n"
        "using namespace deep_gemm;\n"
        "extern \"C\" __global__ void __launch_bounds__(" + std::to_string(threads()) + ", 1)\n"
        "deep_gemm_kernel(const __grid_constant__ TensorMap a, const __grid_constant__ TensorMap b,\n"
        "                 const __grid_constant__ TensorMap sfa, const float* sfb, void* d, const float* c,\n"
        "                 int m, int n, int k) {\n"
        "    fp8_gemm_nt<" + std::to_string(block_m) + ", " + std::to_string(block_n) + ", " +
        std::to_string(stages) + ", " + out_type + ">(a, b, sfa, sfb, static_cast<" + out_type +
        "*>(d), c, m, n, k);\n"
        "}\n";
    return {"fp8_gemm_nt[" + tag + "]", std::move(code)};
}

// Tile heuristic. BLOCK_M follows M: 64 rows (one math warpgroup) when M fits,
// else 128 (two warpgroups sharing each B tile). BLOCK_N is chosen to finish in
// the least time, modelled as (number of waves of CTAs over the SMs) x BLOCK_N,
// since a CTA's run time grows linearly with BLOCK_N; ties go to the larger tile,
// which re-reads A fewer times. Stages fill the shared memory.
FP8GemmConfig select_fp8_gemm_config(int m, int n, int, int num_sms, OutputType output) {
    const int block_m = m <= 64 ? 64 : 128;
    int best_n = kBlockNs.front();
    long best_cost = -1;
    for (int block_n : kBlockNs) {
        const long tiles = static_cast<long>(ceil_div(m, block_m)) * ceil_div(n, block_n);
        const long cost = (tiles + num_sms - 1) / num_sms * block_n;
        if (best_cost < 0 || cost <= best_cost) {
            best_cost = cost;
            best_n = block_n;
        }
    }
    return make_config(block_m, best_n, output);
}

std::vector<FP8GemmConfig> all_fp8_gemm_configs() {
    std::vector<FP8GemmConfig> configs;
    for (OutputType output : {OutputType::BF16, OutputType::FP32})
        for (int block_m : kBlockMs)
            for (int block_n : kBlockNs) configs.push_back(make_config(block_m, block_n, output));
    return configs;
}

namespace {

struct ConfigKey {
    int device, block_m, block_n, stages, output;
    bool operator==(const ConfigKey& o) const {
        return device == o.device && block_m == o.block_m && block_n == o.block_n && stages == o.stages &&
               output == o.output;
    }
};
struct ConfigKeyHash {
    size_t operator()(const ConfigKey& k) const {
        return ((((static_cast<size_t>(k.device) * 31 + k.block_m) * 31 + k.block_n) * 31 + k.stages) * 31) +
               k.output;
    }
};

// Source generation and the JIT lookup happen once per configuration and device.
const jit::Kernel& kernel_for(const FP8GemmConfig& config, int device) {
    static std::mutex mutex;
    static std::unordered_map<ConfigKey, const jit::Kernel*, ConfigKeyHash> kernels;
    const ConfigKey key{device, config.block_m, config.block_n, config.stages, static_cast<int>(config.output)};
    std::lock_guard<std::mutex> lock(mutex);
    auto it = kernels.find(key);
    if (it == kernels.end()) it = kernels.emplace(key, &jit::get_kernel(config.source())).first;
    return *it->second;
}

}  // namespace

void launch_fp8_gemm_nt(const at::Tensor& a, const at::Tensor& sfa, const at::Tensor& b, const at::Tensor& sfb,
                        const at::Tensor& d, const std::optional<at::Tensor>& c, int num_sms) {
    const int m = static_cast<int>(a.size(0)), k = static_cast<int>(a.size(1)), n = static_cast<int>(b.size(0));
    const OutputType output = d.scalar_type() == at::kBFloat16 ? OutputType::BF16 : OutputType::FP32;
    const FP8GemmConfig config = select_fp8_gemm_config(m, n, k, num_sms, output);

    const c10::cuda::CUDAGuard guard(d.device());
    const jit::Kernel& kernel = kernel_for(config, d.get_device());

    CUtensorMap tmap_a = make_tma_2d(a.data_ptr(), CU_TENSOR_MAP_DATA_TYPE_UINT8, m, k, a.stride(0), config.block_m,
                                     kBlockK, CU_TENSOR_MAP_SWIZZLE_128B);
    CUtensorMap tmap_b = make_tma_2d(b.data_ptr(), CU_TENSOR_MAP_DATA_TYPE_UINT8, n, k, b.stride(0), config.block_n,
                                     kBlockK, CU_TENSOR_MAP_SWIZZLE_128B);
    // sfa is MN-major: row i holds the scales of K-block i for all M rows, rows
    // padded to 16 bytes (with one K-block torch may not report that stride).
    const uint64_t sfa_row_bytes = (m + 3) / 4 * 4 * sizeof(float);
    CUtensorMap tmap_sfa = make_tma_2d(sfa.data_ptr(), CU_TENSOR_MAP_DATA_TYPE_FLOAT32, k / kBlockK, m, sfa_row_bytes,
                                       1, config.block_m, CU_TENSOR_MAP_SWIZZLE_NONE);
    const float* sfb_ptr = sfb.data_ptr<float>();
    void* d_ptr = d.data_ptr();
    const float* c_ptr = c.has_value() ? c->data_ptr<float>() : nullptr;
    void* args[] = {&tmap_a, &tmap_b, &tmap_sfa, &sfb_ptr, &d_ptr, &c_ptr,
                    const_cast<int*>(&m), const_cast<int*>(&n), const_cast<int*>(&k)};

    jit::LaunchConfig launch;
    // Persistent CTAs: at most one per SM, each looping over tiles.
    launch.grid = dim3(std::min(num_sms, ceil_div(m, config.block_m) * ceil_div(n, config.block_n)));
    launch.block = dim3(config.threads());
    launch.shared_bytes = config.shared_bytes();
    launch.stream = c10::cuda::getCurrentCUDAStream(d.get_device()).stream();
    kernel.launch(launch, args);
}

}  // namespace deep_gemm::kernels
