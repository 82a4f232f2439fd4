// compile() and get_kernel(): memory cache -> disk cache -> compiler, and loading.
#include "runtime.hpp"
#include "cache.hpp"
#include "compiler.hpp"
#include "files.hpp"
#include "util.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <regex>
#include <stdexcept>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace deep_gemm::jit {

namespace detail {

void warn(const std::string& message) {
    std::fprintf(stderr, "[deep_gemm] warning: %s\n", message.c_str());
    std::fflush(stderr);
}

std::string env(const char* name) {
    const char* value = std::getenv(name);
    return value == nullptr ? "" : value;
}

}  // namespace detail

namespace {

using namespace detail;

// Bump when the key recipe or the entry format changes.
constexpr std::string_view kCacheVersion = "deep_gemm-jit-v1";

// Hash of every file under the shipped include dir (path and content), so that a
// new release of the headers never reuses an old release's cubins.
std::string hash_headers(const std::string& root) {
    Hasher hasher;
    for (const auto& file : list_files_recursive(root))
        hasher.add(file).add(read_file(root + "/" + file));
    return hasher.hex();
}

// Everything init() sets up; replaced as a whole by a later init().
struct State {
    Paths paths;
    std::string headers_hash;
    std::unique_ptr<DiskCache> cache;
    std::unique_ptr<Compiler> compiler;  // chosen at the first compile (dlopen is not free)
    std::unordered_map<std::string, std::shared_ptr<const Cubin>> memo;
};

std::mutex state_mutex;
std::shared_ptr<State> state;
// init() is called once per process except in tests; earlier states stay alive so
// that references from paths() never dangle.
std::vector<std::shared_ptr<State>> retired_states;

std::shared_ptr<State> current_state() {
    if (!state)
        throw std::runtime_error("deep_gemm JIT: not initialised (import deep_gemm calls init())");
    return state;
}

void require_dir(const std::string& path, const char* what, bool may_be_empty) {
    if (path.empty() && may_be_empty)
        return;
    if (!is_directory(path))
        throw std::invalid_argument(std::string("deep_gemm JIT: ") + what + " '" + path +
                                    "' is not a directory");
}

bool verbose() {
    static const bool on = env("DG_JIT_DEBUG") == "1";
    return on;
}

// get_kernel()'s memo: views into the owned KernelSource, so a lookup copies nothing.
struct LoadedKernel {
    KernelSource source;
    int device;
    Kernel kernel;
};
struct KernelKey {
    std::string_view source, entry, arch;
    int device;
    bool operator==(const KernelKey& o) const {
        return device == o.device && entry == o.entry && arch == o.arch && source == o.source;
    }
};
struct KernelKeyHash {
    size_t operator()(const KernelKey& k) const {
        const std::hash<std::string_view> h;
        return h(k.source) ^ (h(k.entry) * 31) ^ (h(k.arch) * 131) ^ static_cast<size_t>(k.device);
    }
};
std::mutex kernels_mutex;
std::unordered_map<KernelKey, std::unique_ptr<LoadedKernel>, KernelKeyHash> kernels;

void check_runtime(cudaError_t error, const char* what) {
    if (error != cudaSuccess)
        throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(error));
}

}  // namespace

std::string static_assert_size(const std::string& device_type, size_t host_size) {
    return "static_assert(sizeof(" + device_type + ") == " + std::to_string(host_size) +
           ", \"host and device argument structs differ\");\n";
}

void init(const Paths& paths) {
    require_dir(paths.include_dir, "include_dir", false);
    require_dir(paths.cuda_home, "cuda_home", true);
    require_dir(paths.cuda_include, "cuda_include", true);
    if (!paths.nvrtc_lib.empty() && !is_regular_file(paths.nvrtc_lib))
        throw std::invalid_argument("deep_gemm JIT: nvrtc_lib '" + paths.nvrtc_lib + "' is not a file");
    auto fresh = std::make_shared<State>();
    fresh->paths = paths;
    fresh->headers_hash = hash_headers(paths.include_dir);
    fresh->cache = std::make_unique<DiskCache>(paths.cache_dir);
    fresh->paths.cache_dir = fresh->cache->dir();
    std::lock_guard<std::mutex> lock(state_mutex);
    if (state)
        retired_states.push_back(std::move(state));
    state = std::move(fresh);
}

const Paths& paths() {
    std::lock_guard<std::mutex> lock(state_mutex);
    return current_state()->paths;
}

std::shared_ptr<const Cubin> compile(const KernelSource& kernel) {
    if (kernel.source.empty() || kernel.entry.empty())
        throw std::invalid_argument("deep_gemm JIT: kernel '" + kernel.name +
                                    "' has an empty source or entry name");
    static const std::regex arch_pattern("sm_[0-9]{2,3}[af]?");
    if (!std::regex_match(kernel.arch, arch_pattern))
        throw std::invalid_argument("deep_gemm JIT: kernel '" + kernel.name + "' has invalid arch '" +
                                    kernel.arch + "' (expected e.g. sm_90a)");
    std::string memo_key = kernel.arch + '\0' + kernel.entry + '\0' + kernel.source;
    std::shared_ptr<State> s;
    const Compiler* compiler = nullptr;
    {
        std::lock_guard<std::mutex> lock(state_mutex);
        s = current_state();
        if (auto it = s->memo.find(memo_key); it != s->memo.end())
            return it->second;
        if (!s->compiler)
            s->compiler = make_compiler(s->paths);
        compiler = s->compiler.get();
    }

    const std::string key = Hasher()
                                .add(kCacheVersion)
                                .add(compiler->fingerprint())
                                .add(kernel.arch)
                                .add(kernel.entry)
                                .add(s->headers_hash)
                                .add(kernel.source)
                                .hex();
    auto cubin = std::make_shared<Cubin>();
    cubin->compiler = compiler->name();
    const auto start = std::chrono::steady_clock::now();
    if (auto cached = s->cache->load(key, kernel.name)) {
        cubin->bytes = std::move(*cached);
        cubin->from_cache = true;
    } else {
        cubin->bytes = compiler->compile(kernel);
        s->cache->store(key, cubin->bytes);
    }
    if (verbose()) {
        const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
        std::fprintf(stderr, "[deep_gemm] %s '%s' (%zu bytes) in %.1f ms\n",
                     cubin->from_cache ? "loaded cached" : ("compiled with " + cubin->compiler).c_str(),
                     kernel.name.c_str(), cubin->bytes.size(), ms.count());
    }

    // Later calls are served from memory: from_cache is true for them.
    std::shared_ptr<const Cubin> memoised = cubin;
    if (!cubin->from_cache) {
        auto copy = std::make_shared<Cubin>(*cubin);
        copy->from_cache = true;
        memoised = std::move(copy);
    }
    std::lock_guard<std::mutex> lock(state_mutex);
    s->memo.emplace(std::move(memo_key), std::move(memoised));
    return cubin;
}

const Kernel& get_kernel(const KernelSource& kernel) {
    int device = 0;
    check_runtime(cudaGetDevice(&device), "cudaGetDevice");
    {
        std::lock_guard<std::mutex> lock(kernels_mutex);
        auto it = kernels.find(KernelKey{kernel.source, kernel.entry, kernel.arch, device});
        if (it != kernels.end())
            return it->second->kernel;
    }

    const auto cubin = compile(kernel);
    // Makes the device's primary context (the one torch uses) current on this thread.
    check_runtime(cudaFree(nullptr), "cudaFree(nullptr) (CUDA context initialisation)");
    const Driver& d = driver();
    const std::string what = " for kernel '" + kernel.name + "'";
    CUmodule module = nullptr;
    check_driver(d.cuModuleLoadData(&module, cubin->bytes.data()), ("cuModuleLoadData" + what).c_str());
    CUfunction function = nullptr;
    check_driver(d.cuModuleGetFunction(&function, module, kernel.entry.c_str()),
                 ("cuModuleGetFunction('" + kernel.entry + "')" + what).c_str());

    auto loaded = std::make_unique<LoadedKernel>(LoadedKernel{kernel, device, Kernel(function)});
    const KernelKey key{loaded->source.source, loaded->source.entry, loaded->source.arch, device};
    std::lock_guard<std::mutex> lock(kernels_mutex);
    // A racing thread may have loaded it first: keep its copy (the module stays loaded).
    return kernels.emplace(key, std::move(loaded)).first->second->kernel;
}

void Kernel::launch(const LaunchConfig& config, void** args) const {
    if (config.cluster_x == 0 || config.grid.x % config.cluster_x != 0)
        throw std::invalid_argument("deep_gemm launch: grid.x (" + std::to_string(config.grid.x) +
                                    ") must be a positive multiple of cluster_x (" +
                                    std::to_string(config.cluster_x) + ")");
    const Driver& d = driver();
    // Above the 48 KiB default, dynamic shared memory needs an explicit opt-in.
    if (config.shared_bytes > 48 * 1024)
        check_driver(d.cuFuncSetAttribute(function_, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                          static_cast<int>(config.shared_bytes)),
                     "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)");
    CUlaunchConfig launch{};
    launch.gridDimX = config.grid.x;
    launch.gridDimY = config.grid.y;
    launch.gridDimZ = config.grid.z;
    launch.blockDimX = config.block.x;
    launch.blockDimY = config.block.y;
    launch.blockDimZ = config.block.z;
    launch.sharedMemBytes = config.shared_bytes;
    launch.hStream = reinterpret_cast<CUstream>(config.stream);
    CUlaunchAttribute cluster{};
    if (config.cluster_x > 1) {
        cluster.id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
        cluster.value.clusterDim.x = config.cluster_x;
        cluster.value.clusterDim.y = 1;
        cluster.value.clusterDim.z = 1;
        launch.attrs = &cluster;
        launch.numAttrs = 1;
    }
    check_driver(d.cuLaunchKernelEx(&launch, function_, args, nullptr), "cuLaunchKernelEx");
}

}  // namespace deep_gemm::jit
