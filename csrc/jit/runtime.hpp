// Public interface of the JIT layer: turn generated CUDA source into a launchable
// kernel, through an on-disk cache. Python-free; the API layer (csrc/apis,
// csrc/jit_kernels) is its only user, the binding only calls init() and the
// compile-only entry points used by tests.
#pragma once

#include <cuda.h>
#include <cuda_runtime.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace deep_gemm::jit {

// Where things live; filled once at import time by deep_gemm/_loader.py.
struct Paths {
    std::string include_dir;  // deep_gemm/include (the shipped kernel headers)
    std::string nvrtc_lib;    // libnvrtc.so.13 from torch's nvidia-cuda-nvrtc ("" = search)
    std::string cuda_home;    // nvcc fallback: $CUDA_HOME/bin/nvcc ("" = none)
    std::string cuda_include; // cuda.h & friends for kernel compiles (nvidia/cu13/include)
    std::string cache_dir;    // $DG_JIT_CACHE_DIR or ~/.cache/deep_gemm
};
void init(const Paths& paths);
const Paths& paths();

// One kernel to build. `source` is a complete translation unit that #includes the
// shipped headers and defines exactly one `extern "C" __global__` entry named
// `entry` (so no C++ name mangling is involved).
struct KernelSource {
    std::string name;    // short human name for logs and errors, e.g. "fp8_gemm_nt[128x128x128 s6]"
    std::string source;
    std::string entry = "deep_gemm_kernel";
    std::string arch = "sm_90a";
};

// A line of a generated source: static_assert(sizeof(`device_type`) == `host_size`), so a
// field added to a kernel's argument struct on one side only fails the JIT compile.
std::string static_assert_size(const std::string& device_type, size_t host_size);

// Compiled device code for one KernelSource. Needs no GPU (tests use it in CI).
struct Cubin {
    std::vector<char> bytes;
    std::string compiler;   // "nvrtc 13.0" / "nvcc 13.0"
    bool from_cache = false;
};
// Memory cache -> disk cache -> compile. Throws std::runtime_error carrying the
// compiler's log on a compile error.
std::shared_ptr<const Cubin> compile(const KernelSource& kernel);

struct LaunchConfig {
    dim3 grid;
    dim3 block;
    unsigned shared_bytes = 0;
    unsigned cluster_x = 1;  // thread-block cluster size along x (TMA multicast)
    cudaStream_t stream = nullptr;
};

// A kernel loaded into the current CUDA context.
class Kernel {
public:
    // `args` follows cuLaunchKernelEx: one pointer per kernel parameter.
    void launch(const LaunchConfig& config, void** args) const;
    CUfunction function() const { return function_; }
    explicit Kernel(CUfunction function) : function_(function) {}
private:
    CUfunction function_;
};

// compile() + load into the current device, memoised per (source, device): a
// cached call is one hash-map lookup. The returned reference lives until exit.
const Kernel& get_kernel(const KernelSource& kernel);

// get_kernel() for callers that generate their source: make_source() runs once per
// distinct `key` (which must include the device), so a repeated call is one map
// lookup, without building the source string. Each call site passes its own lambda,
// whose type gives it its own cache.
template <typename Key, typename MakeSource>
const Kernel& get_kernel_once(const Key& key, MakeSource&& make_source) {
    static std::mutex mutex;
    static std::map<Key, const Kernel*> kernels;
    std::lock_guard<std::mutex> lock(mutex);
    auto it = kernels.find(key);
    if (it == kernels.end()) it = kernels.emplace(key, &get_kernel(make_source())).first;
    return *it->second;
}

// Driver entry points, resolved lazily through cudaGetDriverEntryPointByVersion
// so that nothing links libcuda (the wheel must import on machines without it).
struct Driver {
    decltype(&::cuGetErrorString) cuGetErrorString;
    decltype(&::cuModuleLoadData) cuModuleLoadData;
    decltype(&::cuModuleGetFunction) cuModuleGetFunction;
    decltype(&::cuFuncSetAttribute) cuFuncSetAttribute;
    decltype(&::cuLaunchKernelEx) cuLaunchKernelEx;
    decltype(&::cuTensorMapEncodeTiled) cuTensorMapEncodeTiled;
};
const Driver& driver();

// Throws std::runtime_error("<what>: <driver message>") when result != CUDA_SUCCESS.
void check_driver(CUresult result, const char* what);

}  // namespace deep_gemm::jit
