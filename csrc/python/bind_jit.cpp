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

    m.def(
        "jit_cache_dir", [] { return jit::paths().cache_dir; },
        "The cache directory in use (a temporary one if the configured one is unwritable).");
}
