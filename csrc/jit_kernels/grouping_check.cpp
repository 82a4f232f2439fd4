#include "grouping_check.hpp"

#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <string>
#include <utility>

namespace deep_gemm::kernels {
namespace {

// One CTA: the arrays are small (G, or M rows of MoE tokens; an H100 reads 512K rows
// in about 45 us), and a single CTA needs no cross-CTA reduction, hence no
// zero-filled output to launch first.
constexpr int kThreads = 1024;
constexpr int kRecordInts = 4;  // kGroupingRecordInts in grouping_check.cuh

const jit::Kernel& kernel_for(GemmType type, int device) {
    return jit::get_kernel_once(std::make_pair(device, type), [&] { return grouping_check_source(type); });
}

}  // namespace

jit::KernelSource grouping_check_source(GemmType type) {
    const bool masked = type == GemmType::GroupedMasked;
    std::string code =
        "#include <deep_gemm/grouping_check.cuh>\n"
        "extern \"C\" __global__ void __launch_bounds__(" + std::to_string(kThreads) + ", 1)\n"
        "deep_gemm_kernel(const int* values, int count, int limit, int* record) {\n"
        "    static_assert(deep_gemm::kGroupingRecordInts == " + std::to_string(kRecordInts) + ", \"record size\");\n"
        "    deep_gemm::check_grouping<" + (masked ? "true" : "false") + ", " +
        std::to_string(kContiguousAlignment) + ", " + std::to_string(kThreads) + ">(values, count, limit, record);\n"
        "}\n";
    return {std::string("grouping_check[") + (masked ? "masked" : "contiguous") + "]", std::move(code)};
}

GroupingReport check_grouping(GemmType type, const at::Tensor& grouping, int limit) {
    const c10::cuda::CUDAGuard guard(grouping.device());
    const jit::Kernel& kernel = kernel_for(type, grouping.get_device());
    // Every field is written by the kernel: no fill needed.
    const at::Tensor record = at::empty({kRecordInts}, grouping.options());

    const int* values = grouping.data_ptr<int>();
    int count = static_cast<int>(grouping.numel());
    int* record_ptr = record.data_ptr<int>();
    void* args[] = {&values, &count, &limit, &record_ptr};
    jit::LaunchConfig launch;
    launch.grid = dim3(1);
    launch.block = dim3(kThreads);
    launch.stream = c10::cuda::getCurrentCUDAStream(grouping.get_device()).stream();
    kernel.launch(launch, args);

    // The one sync; memcpy_and_sync also honours torch.cuda.set_sync_debug_mode.
    int host[kRecordInts];
    c10::cuda::memcpy_and_sync(host, record_ptr, sizeof(host), cudaMemcpyDeviceToHost, launch.stream);
    return {static_cast<GroupingViolation>(host[1]), host[0], host[2], host[3]};
}

}  // namespace deep_gemm::kernels
