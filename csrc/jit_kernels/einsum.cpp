#include "einsum.hpp"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <string>
#include <utility>

#include "tma.hpp"

namespace deep_gemm::kernels {
namespace {

// Mirrors einsum.cuh.
constexpr int kBlockM = 128;
constexpr int kBlockN = 128;
constexpr int kBlockK = 64;
constexpr int kThreads = 288;  // two math warpgroups and one producer warp
constexpr int kStages = 6;     // 'bmk,bnk->mn': 6 x 32 KB, one CTA per SM
// Per-head GEMMs: 3 x 32 KB and two CTAs per SM, so that one CTA's epilogue (and
// the next one's first loads) overlap the other's MMAs: their K is often short
// (d = 128: two K-blocks) and their tiles many.
constexpr int kPerHeadStages = 3;
constexpr int kPerHeadCtasPerSm = 2;

struct BmkArgs {
    float* d;
    int batch, m, n, k;
    int n_tiles, tiles, splits;
};

struct PerHeadArgs {
    void* d;
    long long d_stride;
    int rows, heads, n, k;
    int m_tiles, n_tiles;
    int tma_store;
};

int shared_bytes(int stages) { return stages * (kBlockM + kBlockN) * kBlockK * 2 + 2 * stages * 8; }

jit::KernelSource bmk_source() {
    std::string code =
        "#include <deep_gemm/einsum.cuh>\n"
        "using namespace deep_gemm;\n"
        + jit::static_assert_size("einsum::BmkArgs", sizeof(BmkArgs)) +
        "static_assert(einsum::BmkLayout<" + std::to_string(kStages) + ">::kBytes == " +
        std::to_string(shared_bytes(kStages)) + ", \"host and device shared memory sizes differ\");\n"
        "extern \"C\" __global__ void __launch_bounds__(" + std::to_string(kThreads) + ", 1)\n"
        "deep_gemm_bmn_bnk_mn_gemm_impl(const __grid_constant__ TensorMap a_map, const __grid_constant__ TensorMap b_map,\n"
        "                          const __grid_constant__ einsum::BmkArgs args) {\n"
        "    einsum::bmk_bnk_mn<" + std::to_string(kStages) + ">(&a_map, &b_map, args);\n"
        "}\n";
    return {"einsum[bmk,bnk->mn]", std::move(code), "deep_gemm_bmn_bnk_mn_gemm_impl"};
}

// B K-major ('bhr,hdr->bhd') or MN-major ('bhd,hdr->bhr'); the kernels' names contain
// "gemm", which upstream's tests time them by.
jit::KernelSource per_head_source(bool mn_major_b) {
    const std::string kernel = mn_major_b ? "deep_gemm_bf16_per_head_gemm_mn_major_b" : "deep_gemm_bf16_per_head_gemm";
    std::string code =
        "#include <deep_gemm/einsum.cuh>\n"
        "using namespace deep_gemm;\n"
        + jit::static_assert_size("einsum::PerHeadArgs", sizeof(PerHeadArgs)) +
        "static_assert(einsum::BmkLayout<" + std::to_string(kPerHeadStages) + ">::kBytes == " +
        std::to_string(shared_bytes(kPerHeadStages)) + ", \"host and device shared memory sizes differ\");\n"
        "extern \"C\" __global__ void __launch_bounds__(" + std::to_string(kThreads) + ", " +
        std::to_string(kPerHeadCtasPerSm) + ")\n" +
        kernel + "(const __grid_constant__ TensorMap a_map, const __grid_constant__ TensorMap b_map,\n"
        "          const __grid_constant__ TensorMap d_map, const __grid_constant__ einsum::PerHeadArgs args) {\n"
        "    einsum::per_head_gemm<" + std::to_string(kPerHeadStages) + ", " + (mn_major_b ? "true" : "false") +
        ">(&a_map, &b_map, &d_map, args);\n"
        "}\n";
    return {mn_major_b ? "einsum[per-head mn-major b]" : "einsum[per-head]", std::move(code), kernel};
}

}  // namespace

std::vector<jit::KernelSource> einsum_kernel_sources() {
    return {bmk_source(), per_head_source(false), per_head_source(true)};
}

void launch_bmk_bnk_mn(const at::Tensor& a, const at::Tensor& b, const at::Tensor& d, int num_sms) {
    const int batch = static_cast<int>(a.size(0)), m = static_cast<int>(a.size(1)), k = static_cast<int>(a.size(2));
    const int n = static_cast<int>(b.size(1));
    const int device = a.get_device();
    const c10::cuda::CUDAGuard guard(a.device());
    const jit::Kernel& kernel = jit::get_kernel_once(device, [] { return bmk_source(); });
    CUtensorMap a_map = make_tma_2d(a.data_ptr(), CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, static_cast<uint64_t>(batch) * m,
                                    k, static_cast<uint64_t>(k) * 2, kBlockM, kBlockK, CU_TENSOR_MAP_SWIZZLE_128B);
    CUtensorMap b_map = make_tma_2d(b.data_ptr(), CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, static_cast<uint64_t>(batch) * n,
                                    k, static_cast<uint64_t>(k) * 2, kBlockN, kBlockK, CU_TENSOR_MAP_SWIZZLE_128B);
    const int n_tiles = (n + kBlockN - 1) / kBlockN, tiles = (m + kBlockM - 1) / kBlockM * n_tiles;
    // One wave: the batches split into as many ranges as leave every SM one CTA.
    const int splits = std::max(1, std::min(batch, num_sms / tiles));
    BmkArgs args{d.data_ptr<float>(), batch, m, n, k, n_tiles, tiles, splits};
    void* kernel_args[] = {&a_map, &b_map, &args};
    jit::LaunchConfig launch;
    launch.grid = dim3(static_cast<unsigned>(tiles * splits));
    launch.block = dim3(kThreads);
    launch.shared_bytes = shared_bytes(kStages);
    launch.stream = c10::cuda::getCurrentCUDAStream(device).stream();
    kernel.launch(launch, kernel_args);
}

void launch_per_head_gemm(const at::Tensor& a, const at::Tensor& b, const at::Tensor& d, bool mn_major_b,
                          bool tma_store) {
    const int rows = static_cast<int>(a.size(0)), heads = static_cast<int>(a.size(1)), k = static_cast<int>(a.size(2));
    const int n = static_cast<int>(mn_major_b ? b.size(2) : b.size(1));
    const int device = a.get_device();
    const c10::cuda::CUDAGuard guard(a.device());
    const jit::Kernel& kernel =
        jit::get_kernel_once(std::make_pair(device, mn_major_b), [mn_major_b] { return per_head_source(mn_major_b); });
    CUtensorMap a_map = make_tma_2d(a.data_ptr(), CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, rows,
                                    static_cast<uint64_t>(heads) * k, static_cast<uint64_t>(a.stride(0)) * 2, kBlockM,
                                    kBlockK, CU_TENSOR_MAP_SWIZZLE_128B);
    // MN-major: boxes of 64 K-rows x 64 N-columns (one 128-byte swizzled row each).
    CUtensorMap b_map =
        mn_major_b ? make_tma_2d(b.data_ptr(), CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, static_cast<uint64_t>(heads) * k, n,
                                 static_cast<uint64_t>(b.stride(1)) * 2, kBlockK, 64, CU_TENSOR_MAP_SWIZZLE_128B)
                   : make_tma_2d(b.data_ptr(), CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, static_cast<uint64_t>(heads) * n, k,
                                 static_cast<uint64_t>(b.stride(1)) * 2, kBlockN, kBlockK, CU_TENSOR_MAP_SWIZZLE_128B);
    // D as [rows, heads, N], so that the TMA stores' boxes (64 columns x 1 head x 64
    // rows) clip at each head's N; without tma_store the map is left unused.
    CUtensorMap d_map{};
    if (tma_store)
        d_map = make_tma_3d(d.data_ptr(), CU_TENSOR_MAP_DATA_TYPE_BFLOAT16,
                            {static_cast<uint64_t>(n), static_cast<uint64_t>(heads), static_cast<uint64_t>(rows)},
                            {static_cast<uint64_t>(d.stride(1)) * 2, static_cast<uint64_t>(d.stride(0)) * 2},
                            {64, 1, 64}, CU_TENSOR_MAP_SWIZZLE_128B);
    const int m_tiles = (rows + kBlockM - 1) / kBlockM, n_tiles = (n + kBlockN - 1) / kBlockN;
    PerHeadArgs args{d.data_ptr(), static_cast<long long>(d.stride(0)), rows, heads, n, k, m_tiles, n_tiles,
                     tma_store ? 1 : 0};
    void* kernel_args[] = {&a_map, &b_map, &d_map, &args};
    jit::LaunchConfig launch;
    launch.grid = dim3(static_cast<unsigned>(heads * m_tiles * n_tiles));
    launch.block = dim3(kThreads);
    launch.shared_bytes = shared_bytes(kPerHeadStages);
    launch.stream = c10::cuda::getCurrentCUDAStream(device).stream();
    kernel.launch(launch, kernel_args);
}

}  // namespace deep_gemm::kernels
