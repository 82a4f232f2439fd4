#include "fp8_gemm.hpp"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdlib>
#include <array>
#include <map>
#include <mutex>
#include <tuple>

#include "tma.hpp"

namespace deep_gemm::kernels {
namespace {

constexpr int kBlockK = 128;
// Largest dynamic shared memory a Hopper CTA may opt into (227 KiB).
constexpr int kMaxSharedBytes = 232448;
constexpr int kMaxStages = 8;
// Divisors of B's 128-column scale block (see fp8_gemm.cuh). Measured on H100:
// 128 beats 160 and 192 on every DeepGEMM shape at M = 4096 (per-column scale
// selection costs more than the larger tile saves).
constexpr std::array<int, 4> kBlockNs = {16, 32, 64, 128};
constexpr std::array<int, 2> kBlockMs = {64, 128};

int ceil_div(int a, int b) { return (a + b - 1) / b; }

// Mirrors FP8GemmLayout in deep_gemm/include/deep_gemm/fp8_gemm.cuh: an optional
// bf16 staging tile for D, then per stage A, B, A's scales and two barriers.
int stage_bytes(int block_m, int block_n) { return block_m * kBlockK + block_n * kBlockK + block_m * 4 + 16; }
int staging_bytes(int block_m, int block_n, bool tma_store) { return tma_store ? block_m * block_n * 2 : 0; }

FP8GemmConfig make_config(int block_m, int block_n, OutputType output, bool tma_store) {
    const int stages = std::min(kMaxStages, (kMaxSharedBytes - staging_bytes(block_m, block_n, tma_store)) /
                                                stage_bytes(block_m, block_n));
    return {block_m, block_n, stages, output, tma_store};
}

// The TMA store writes 64-column chunks of bf16 rows whose stride is a 16-byte multiple.
bool can_tma_store(int n, int block_n, OutputType output) {
    return output == OutputType::BF16 && block_n % 64 == 0 && n % 8 == 0;
}

}  // namespace

int FP8GemmConfig::threads() const { return 128 * (block_m / 64 + 1); }
int FP8GemmConfig::shared_bytes() const {
    return staging_bytes(block_m, block_n, tma_store) + stages * stage_bytes(block_m, block_n);
}

jit::KernelSource FP8GemmConfig::source() const {
    const char* out_type = output == OutputType::BF16 ? "__nv_bfloat16" : "float";
    const std::string tag = std::to_string(block_m) + "x" + std::to_string(block_n) + "x" + std::to_string(kBlockK) +
                            " s" + std::to_string(stages) + (output == OutputType::BF16 ? " bf16" : " fp32") +
                            (tma_store ? " tma-store" : "");
    std::string code =
        "#include <deep_gemm/fp8_gemm.cuh>\n"
        "using namespace deep_gemm;\n"
        "extern \"C\" __global__ void __launch_bounds__(" + std::to_string(threads()) + ", 1)\n"
        "deep_gemm_kernel(const __grid_constant__ TensorMap a, const __grid_constant__ TensorMap b,\n"
        "                 const __grid_constant__ TensorMap sfa, const __grid_constant__ TensorMap d_map,\n"
        "                 const float* sfb, void* d, const float* c, int m, int n, int k) {\n"
        "    fp8_gemm_nt<" + std::to_string(block_m) + ", " + std::to_string(block_n) + ", " +
        std::to_string(stages) + ", " + (tma_store ? "true" : "false") + ", " + out_type +
        ">(a, b, sfa, d_map, sfb, static_cast<" + out_type + "*>(d), c, m, n, k);\n"
        "}\n";
    return {"fp8_gemm_nt[" + tag + "]", std::move(code)};
}

// Tile heuristic. BLOCK_M follows M: 64 rows (one math warpgroup) when M fits,
// else 128 (two warpgroups sharing each B tile). BLOCK_N minimises the modelled
// time: (waves of tiles over the SMs) x (BLOCK_N + kTileOverheadN). A tile's
// MMA time grows with BLOCK_N; the overhead term stands for what every tile pays
// whatever its width (re-reading A's row panel, the promotion's scale work, the
// epilogue), so narrow tiles win only when they fill idle SMs (small M, as in
// decoding), not when they merely shave a partial wave. Measured on H100 at
// M = 4096: BLOCK_N 128 reaches 1200 TFLOPS where 16 (which pure wave-counting
// picks) falls under 250. Ties go to the larger tile. Stages fill shared memory.
constexpr int kTileOverheadN = 64;

FP8GemmConfig select_fp8_gemm_config(int m, int n, int, int num_sms, OutputType output) {
    const int block_m = m <= 64 ? 64 : 128;
    // Tuning override, read once: DG_FP8_GEMM_BLOCK_N=64 forces that BLOCK_N.
    static const int forced_block_n = [] {
        const char* env = std::getenv("DG_FP8_GEMM_BLOCK_N");
        return env == nullptr ? 0 : std::atoi(env);
    }();
    if (forced_block_n > 0) {
        TORCH_CHECK_VALUE(std::find(kBlockNs.begin(), kBlockNs.end(), forced_block_n) != kBlockNs.end(),
                          "DG_FP8_GEMM_BLOCK_N=", forced_block_n, " is not one of 16, 32, 64, 128");
        return make_config(block_m, forced_block_n, output, can_tma_store(n, forced_block_n, output));
    }
    int best_n = kBlockNs.front();
    long best_cost = -1;
    for (int block_n : kBlockNs) {
        const long tiles = static_cast<long>(ceil_div(m, block_m)) * ceil_div(n, block_n);
        const long cost = (tiles + num_sms - 1) / num_sms * (block_n + kTileOverheadN);
        if (best_cost < 0 || cost <= best_cost) {
            best_cost = cost;
            best_n = block_n;
        }
    }
    return make_config(block_m, best_n, output, can_tma_store(n, best_n, output));
}

std::vector<FP8GemmConfig> all_fp8_gemm_configs() {
    std::vector<FP8GemmConfig> configs;
    for (OutputType output : {OutputType::BF16, OutputType::FP32})
        for (int block_m : kBlockMs)
            for (int block_n : kBlockNs) {
                configs.push_back(make_config(block_m, block_n, output, false));
                if (can_tma_store(8, block_n, output)) configs.push_back(make_config(block_m, block_n, output, true));
            }
    return configs;
}

namespace {

// Source generation and the JIT lookup happen once per configuration and device.
const jit::Kernel& kernel_for(const FP8GemmConfig& config, int device) {
    static std::mutex mutex;
    static std::map<std::tuple<int, int, int, int, OutputType, bool>, const jit::Kernel*> kernels;
    const auto key = std::make_tuple(device, config.block_m, config.block_n, config.stages, config.output,
                                     config.tma_store);
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
    // D's map: 64x64 boxes (one 128-byte swizzled chunk per math warpgroup's rows).
    CUtensorMap tmap_d{};
    if (config.tma_store)
        tmap_d = make_tma_2d(d.data_ptr(), CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, m, n, n * sizeof(at::BFloat16), 64, 64,
                             CU_TENSOR_MAP_SWIZZLE_128B);
    const float* sfb_ptr = sfb.data_ptr<float>();
    void* d_ptr = d.data_ptr();
    const float* c_ptr = c.has_value() ? c->data_ptr<float>() : nullptr;
    void* args[] = {&tmap_a, &tmap_b, &tmap_sfa, &tmap_d, &sfb_ptr, &d_ptr, &c_ptr,
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
