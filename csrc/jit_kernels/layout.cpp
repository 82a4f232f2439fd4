#include "layout.hpp"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdint>
#include <string>

namespace deep_gemm::kernels {
namespace {

// Mirror layout.cuh.
constexpr int kMaxPackGroups = 256;
constexpr int kPackThreads = 256;

struct KGroupedPackArgs {
    const float* sf;
    int* out;
    int mn;
    int groups;
    int vector_width;
    int packed_start[kMaxPackGroups + 1];
    int sf_start[kMaxPackGroups + 1];
};

struct MnMajorPackArgs {
    const float* sf;
    int* out;
    int64_t sf_stride_group, sf_stride_mn, sf_stride_k;
    int mn, sf_k, packed_k, aligned_mn;
};

jit::KernelSource pack_k_grouped_source() {
    std::string code =
        "#include <deep_gemm/layout.cuh>\n"
        "using namespace deep_gemm;\n"
        + jit::static_assert_size("layout::KGroupedPackArgs", sizeof(KGroupedPackArgs)) +
        "static_assert(layout::kMaxPackGroups == " + std::to_string(kMaxPackGroups) +
        " && layout::kPackThreads == " + std::to_string(kPackThreads) + ", \"host and device constants differ\");\n"
        "extern \"C\" __global__ void __launch_bounds__(" + std::to_string(kPackThreads) + ")\n"
        "deep_gemm_k_grouped_pack_fp32_into_ue8m0(const __grid_constant__ layout::KGroupedPackArgs args) {\n"
        "    layout::pack_k_grouped_ue8m0(args);\n"
        "}\n";
    return {"k_grouped_pack_fp32_into_ue8m0", std::move(code), "deep_gemm_k_grouped_pack_fp32_into_ue8m0"};
}

jit::KernelSource transpose_and_pack_source() {
    std::string code =
        "#include <deep_gemm/layout.cuh>\n"
        "using namespace deep_gemm;\n"
        + jit::static_assert_size("layout::MnMajorPackArgs", sizeof(MnMajorPackArgs)) +
        "extern \"C\" __global__ void __launch_bounds__(" + std::to_string(kPackThreads) + ")\n"
        "deep_gemm_transpose_and_pack_fp32_into_ue8m0(const __grid_constant__ layout::MnMajorPackArgs args) {\n"
        "    layout::transpose_and_pack_ue8m0(args);\n"
        "}\n";
    return {"transpose_and_pack_fp32_into_ue8m0", std::move(code), "deep_gemm_transpose_and_pack_fp32_into_ue8m0"};
}

// Threads per CTA for `units` per row: a multiple of a warp, at most kPackThreads.
int threads_for(int units) { return std::min(kPackThreads, (units + 31) / 32 * 32); }

}  // namespace

std::vector<jit::KernelSource> layout_kernel_sources() {
    return {pack_k_grouped_source(), transpose_and_pack_source()};
}

void launch_transpose_and_pack_ue8m0(const at::Tensor& sf, const at::Tensor& out) {
    const int device = sf.get_device();
    const c10::cuda::CUDAGuard guard(sf.device());
    const jit::Kernel& kernel = jit::get_kernel_once(device, [] { return transpose_and_pack_source(); });
    MnMajorPackArgs args{};
    args.sf = sf.data_ptr<float>();
    args.out = out.data_ptr<int>();
    args.sf_stride_group = sf.stride(0);
    args.sf_stride_mn = sf.stride(1);
    args.sf_stride_k = sf.stride(2);
    args.mn = static_cast<int>(sf.size(1));
    args.sf_k = static_cast<int>(sf.size(2));
    args.packed_k = static_cast<int>(out.size(2));
    args.aligned_mn = static_cast<int>(out.stride(2));
    const int threads = threads_for(args.mn);
    jit::LaunchConfig launch;
    launch.grid = dim3(static_cast<unsigned>((args.mn + threads - 1) / threads), static_cast<unsigned>(args.packed_k),
                       static_cast<unsigned>(sf.size(0)));
    launch.block = dim3(static_cast<unsigned>(threads));
    launch.stream = c10::cuda::getCurrentCUDAStream(device).stream();
    void* kernel_args[] = {&args};
    kernel.launch(launch, kernel_args);
}

void launch_pack_k_grouped_ue8m0(const at::Tensor& sf, const std::vector<int>& sf_rows, const at::Tensor& out) {
    const int device = sf.get_device();
    const c10::cuda::CUDAGuard guard(sf.device());
    const jit::Kernel& kernel = jit::get_kernel_once(device, [] { return pack_k_grouped_source(); });
    const int mn = static_cast<int>(sf.size(1));
    const bool vectorized = mn % 4 == 0 && reinterpret_cast<uintptr_t>(sf.data_ptr()) % 16 == 0 &&
                            reinterpret_cast<uintptr_t>(out.data_ptr()) % 16 == 0;
    const int width = vectorized ? 4 : 1;
    const int units = (mn + width - 1) / width;  // threads per packed row
    const int threads = threads_for(units);
    const int runs = (units + threads - 1) / threads;
    TORCH_CHECK_VALUE(runs <= 65535, "get_k_grouped_mn_major_tma_aligned_packed_ue8m0_tensor: MN = ", mn,
                      " is more columns than one launch covers (gridDim.y <= 65535)");

    jit::LaunchConfig launch;
    launch.block = dim3(static_cast<unsigned>(threads));
    launch.stream = c10::cuda::getCurrentCUDAStream(device).stream();
    const float* sf_base = sf.data_ptr<float>();
    int* out_base = out.data_ptr<int>();
    int64_t sf_row = 0, packed_row = 0;  // the launch's first rows
    const int total_groups = static_cast<int>(sf_rows.size());
    for (int begin = 0; begin < total_groups; begin += kMaxPackGroups) {
        KGroupedPackArgs args{};
        args.groups = std::min(kMaxPackGroups, total_groups - begin);
        args.mn = mn;
        args.vector_width = width;
        args.sf = sf_base + sf_row * mn;
        args.out = out_base + packed_row * mn;
        for (int g = 0; g < args.groups; ++g) {
            const int rows = sf_rows[static_cast<size_t>(begin + g)];
            args.sf_start[g + 1] = args.sf_start[g] + rows;
            args.packed_start[g + 1] = args.packed_start[g] + (rows + 3) / 4;
        }
        sf_row += args.sf_start[args.groups];
        packed_row += args.packed_start[args.groups];
        if (args.packed_start[args.groups] == 0) continue;  // only empty groups
        launch.grid = dim3(static_cast<unsigned>(args.packed_start[args.groups]), static_cast<unsigned>(runs));
        void* kernel_args[] = {&args};
        kernel.launch(launch, kernel_args);
    }
}

}  // namespace deep_gemm::kernels
