#include "hyperconnection.hpp"

#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <string>
#include <tuple>

#include "tma.hpp"

namespace deep_gemm::kernels {
namespace {

// Mirrors hc_prenorm.cuh.
constexpr int kBlockM = 64;
constexpr int kBlockK = 64;
constexpr int kHalfK = 32;
constexpr int kThreads = 160;  // one math warpgroup and one producer warp
constexpr int kStages = 5;     // 5 x 14 KB (N = 24): three CTAs per SM
constexpr int kCtasPerSm = 3;
constexpr int kReduceThreads = 256;

struct HcArgs {
    float* d;
    float* sqr_sum;
    int m, n, k;
    int splits;
};

int padded_columns(int n) { return (n + 7) / 8 * 8; }

int shared_bytes(int n_pad) { return kStages * (kBlockM * kBlockK * 2 + 2 * n_pad * kHalfK * 4) + 2 * kStages * 8; }

jit::KernelSource prenorm_source(int n_pad) {
    std::string code =
        "#include <deep_gemm/hc_prenorm.cuh>\n"
        "using namespace deep_gemm;\n"
        + jit::static_assert_size("hc::HcArgs", sizeof(HcArgs)) +
        "static_assert(hc::HcLayout<" + std::to_string(n_pad) + ", " + std::to_string(kStages) +
        ">::kBytes == " + std::to_string(shared_bytes(n_pad)) + ", \"host and device shared memory sizes differ\");\n"
        "extern \"C\" __global__ void __launch_bounds__(" + std::to_string(kThreads) + ", " +
        std::to_string(kCtasPerSm) + ")\n"
        "deep_gemm_tf32_hc_prenorm_gemm(const __grid_constant__ TensorMap a_map, const __grid_constant__ TensorMap b_map,\n"
        "                               const __grid_constant__ hc::HcArgs args) {\n"
        "    hc::tf32_hc_prenorm_gemm<" + std::to_string(n_pad) + ", " + std::to_string(kStages) +
        ">(&a_map, &b_map, args);\n"
        "}\n";
    return {"tf32_hc_prenorm_gemm[n" + std::to_string(n_pad) + "]", std::move(code),
            "deep_gemm_tf32_hc_prenorm_gemm"};
}

jit::KernelSource reduce_source() {
    std::string code =
        "#include <deep_gemm/hc_prenorm.cuh>\n"
        "using namespace deep_gemm;\n"
        "extern \"C\" __global__ void __launch_bounds__(" + std::to_string(kReduceThreads) + ", 1)\n"
        "deep_gemm_hc_prenorm_reduce(const float* partial_d, const float* partial_s, float* d, float* sqr_sum,\n"
        "                            int m, int n, int outputs, int per_output) {\n"
        "    hc::hc_reduce_splits(partial_d, partial_s, d, sqr_sum, m, n, outputs, per_output);\n"
        "}\n";
    return {"hc_prenorm_reduce", std::move(code), "deep_gemm_hc_prenorm_reduce"};
}

}  // namespace

std::vector<jit::KernelSource> hyperconnection_kernel_sources() {
    std::vector<jit::KernelSource> sources;
    for (int n_pad = 8; n_pad <= kMaxHcColumns; n_pad += 8) sources.push_back(prenorm_source(n_pad));
    sources.push_back(reduce_source());
    return sources;
}

// As many K ranges as one wave of CTAs (kCtasPerSm per SM) holds for every row block,
// at least one K-block each.
int hc_prenorm_splits(int m, int k, int num_sms) {
    const int m_blocks = (m + kBlockM - 1) / kBlockM, k_blocks = (k + kBlockK - 1) / kBlockK;
    return std::max(1, std::min(k_blocks, kCtasPerSm * num_sms / m_blocks));
}

// The caller's splits as they are (one kernel, no partials) where each already has at
// most kOneKernelKBlocks K-blocks: the second kernel and its partials cost more than the
// ranges' shorter K saves. H200, M = 13 / 137, num_splits = 16 (CUDA graph, per call):
// K = 7168 / 7680 3.7-4.3 us as one kernel against 5.1-6.9 us split further and added up;
// K = 28672 9.3 us against 5.7-7.0 us.
constexpr int kOneKernelKBlocks = 16;
int hc_ranges_per_output(int m, int k, int outputs, int num_sms) {
    const int k_blocks = (k + kBlockK - 1) / kBlockK;
    if (outputs > 1 && k_blocks <= kOneKernelKBlocks * outputs) return 1;
    return std::max(1, hc_prenorm_splits(m, k, num_sms) / outputs);
}

void launch_tf32_hc_prenorm_gemm(const at::Tensor& a, const at::Tensor& b, const at::Tensor& d,
                                 const at::Tensor& sqr_sum, int splits, int num_sms) {
    const int m = static_cast<int>(a.size(0)), k = static_cast<int>(a.size(1)), n = static_cast<int>(b.size(0));
    const int n_pad = padded_columns(n);
    const int device = a.get_device();
    const c10::cuda::CUDAGuard guard(a.device());
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device).stream();
    const jit::Kernel& kernel =
        jit::get_kernel_once(std::make_pair(device, n_pad), [&] { return prenorm_source(n_pad); });

    // The kernel's K ranges: enough for one wave, a multiple of the caller's splits
    // (each output split the sum of `per_output` consecutive ranges: their K-blocks
    // nest in its own), added up by a second kernel unless there is one per output.
    const int outputs = splits == 0 ? 1 : splits;
    const int per_output = hc_ranges_per_output(m, k, outputs, num_sms);
    const int ranges = outputs * per_output;
    at::Tensor partials;
    float* out_d = d.data_ptr<float>();
    float* out_s = sqr_sum.data_ptr<float>();
    if (per_output > 1) {
        partials = at::empty({static_cast<int64_t>(ranges) * m * (n + 1)}, d.options());
        out_d = partials.data_ptr<float>();
        out_s = out_d + static_cast<int64_t>(ranges) * m * n;
    }

    CUtensorMap a_map = make_tma_2d(a.data_ptr(), CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, m, k,
                                    static_cast<uint64_t>(k) * 2, kBlockM, kBlockK, CU_TENSOR_MAP_SWIZZLE_128B);
    // TFLOAT32: the tensor copy rounds B to TF32 (to nearest) on its way to shared memory,
    // as cuBLAS's TF32 GEMMs do; the MMA alone would truncate it (a bias of -4e-4).
    CUtensorMap b_map = make_tma_2d(b.data_ptr(), CU_TENSOR_MAP_DATA_TYPE_TFLOAT32, n, k,
                                    static_cast<uint64_t>(k) * 4, n_pad, kHalfK, CU_TENSOR_MAP_SWIZZLE_128B);
    HcArgs args{out_d, out_s, m, n, k, ranges};
    void* kernel_args[] = {&a_map, &b_map, &args};
    jit::LaunchConfig launch;
    launch.grid = dim3(static_cast<unsigned>((m + kBlockM - 1) / kBlockM * ranges));
    launch.block = dim3(kThreads);
    launch.shared_bytes = shared_bytes(n_pad);
    launch.stream = stream;
    kernel.launch(launch, kernel_args);

    if (!partials.defined()) return;
    const jit::Kernel& reduce = jit::get_kernel_once(device, [] { return reduce_source(); });
    const float* partial_d = out_d;
    const float* partial_s = out_s;
    float* final_d = d.data_ptr<float>();
    float* final_s = sqr_sum.data_ptr<float>();
    int rows = m, cols = n, groups = outputs, group_size = per_output;
    void* reduce_args[] = {&partial_d, &partial_s, &final_d, &final_s, &rows, &cols, &groups, &group_size};
    const int64_t results = static_cast<int64_t>(outputs) * m * (n + 1);
    jit::LaunchConfig reduce_launch;
    reduce_launch.grid = dim3(static_cast<unsigned>((results + kReduceThreads - 1) / kReduceThreads));
    reduce_launch.block = dim3(kReduceThreads);
    reduce_launch.stream = stream;
    reduce.launch(reduce_launch, reduce_args);
}

}  // namespace deep_gemm::kernels
