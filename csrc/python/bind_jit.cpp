#include <pybind11/stl.h>

#include <cstdint>
#include <tuple>
#include <vector>

#include "../jit/runtime.hpp"
#include "bindings.hpp"

namespace py = pybind11;
namespace jit = deep_gemm::jit;

void bind_jit(py::module_& m) {
    m.def(
        "init",
        [](std::string include_dir, std::string nvrtc_lib, std::string cuda_home,
           std::string cuda_include, std::string cache_dir) {
            jit::init(jit::Paths{std::move(include_dir), std::move(nvrtc_lib), std::move(cuda_home),
                                 std::move(cuda_include), std::move(cache_dir)});
        },
        py::arg("include_dir"), py::arg("nvrtc_lib"), py::arg("cuda_home"), py::arg("cuda_include"),
        py::arg("cache_dir"),
        "Set the JIT's paths (deep_gemm/_loader.py calls this at import). An unwritable "
        "cache_dir falls back to a temporary directory with a warning.");

    m.def(
        "jit_compile",
        [](std::string name, std::string source, std::string entry, std::string arch) {
            jit::KernelSource kernel{std::move(name), std::move(source), std::move(entry), std::move(arch)};
            std::shared_ptr<const jit::Cubin> cubin;
            {
                py::gil_scoped_release release;
                cubin = jit::compile(kernel);
            }
            py::dict result;
            result["compiler"] = cubin->compiler;
            result["from_cache"] = cubin->from_cache;
            result["size"] = cubin->bytes.size();
            return result;
        },
        py::arg("name"), py::arg("source"), py::arg("entry") = "deep_gemm_kernel",
        py::arg("arch") = "sm_90a",
        "Compile (or fetch from the caches) one kernel without loading it; needs no GPU. "
        "Returns dict(compiler=..., from_cache=..., size=...).");

    using Dim3 = std::tuple<unsigned, unsigned, unsigned>;
    m.def(
        "jit_launch",
        [](std::string name, std::string source, Dim3 grid, Dim3 block, unsigned shared_bytes, unsigned cluster_x,
           std::vector<uint64_t> args, uintptr_t stream, std::string entry) {
            py::gil_scoped_release release;
            const jit::Kernel& kernel = jit::get_kernel(jit::KernelSource{std::move(name), std::move(source), std::move(entry)});
            std::vector<void*> params;
            for (auto& arg : args)
                params.push_back(&arg);
            const auto [gx, gy, gz] = grid;
            const auto [bx, by, bz] = block;
            kernel.launch(jit::LaunchConfig{dim3(gx, gy, gz), dim3(bx, by, bz), shared_bytes, cluster_x,
                                            reinterpret_cast<cudaStream_t>(stream)},
                          params.data());
        },
        py::arg("name"), py::arg("source"), py::arg("grid"), py::arg("block"), py::arg("shared_bytes") = 0,
        py::arg("cluster_x") = 1, py::arg("args") = std::vector<uint64_t>{}, py::arg("stream") = 0,
        py::arg("entry") = "deep_gemm_kernel",
        "Load (through the caches) and launch a kernel on the current device, asynchronously on `stream` "
        "(a cudaStream_t as int). Every kernel parameter must be 8 bytes (pointers, 64-bit ints): `args` "
        "holds their values. For tests and debugging of the JIT layer.");

    m.def(
        "jit_cache_dir", [] { return jit::paths().cache_dir; },
        "The cache directory in use (a temporary one if the configured one is unwritable).");
}
