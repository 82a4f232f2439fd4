// deep_gemm._C: the Python names of libdeep_gemm_runtime (csrc/jit, csrc/apis).
//
// The only part of deep_gemm built once per CPython, so it is one translation
// unit (pybind11's headers alone cost seconds per TU) that includes nothing of
// torch beyond ATen/core/Tensor.h and c10's exceptions (see tensor_caster.hpp).
// Arguments are validated in the runtime; this file only converts them.
#include <c10/util/Exception.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "../apis/device.hpp"
#include "../apis/gemm.hpp"
#include "../jit/runtime.hpp"
#include "tensor_caster.hpp"

namespace py = pybind11;
namespace jit = deep_gemm::jit;

namespace {

// The runtime raises c10 errors; Python sees TypeError / ValueError / RuntimeError
// with the message only (no C++ backtrace). Module-local: torch shares pybind11's
// internals with us, and a global translator would also rewrite torch's own errors.
void translate_c10_errors(std::exception_ptr error) {
    try {
        if (error) std::rethrow_exception(error);
    } catch (const c10::TypeError& e) {
        PyErr_SetString(PyExc_TypeError, e.what_without_backtrace());
    } catch (const c10::ValueError& e) {
        PyErr_SetString(PyExc_ValueError, e.what_without_backtrace());
    } catch (const c10::Error& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what_without_backtrace());
    }
}

void bind_gemm(py::module_& m) {
    using namespace deep_gemm::api;
    m.def("fp8_gemm_nt", &fp8_gemm_nt, py::arg("a"), py::arg("b"), py::arg("d"), py::arg("c") = py::none(),
          py::call_guard<py::gil_scoped_release>(),
          "D = A @ B.T (+ C) for e4m3 A [M, K] and B [N, K] with DeepGEMM's 1x128 / 128x128 block scales.\n"
          "a and b are (data, scales) pairs; d is bf16 or fp32 [M, N]; c (fp32) needs an fp32 d.");
    m.def("bf16_gemm_nt", &bf16_gemm_nt, py::arg("a"), py::arg("b"), py::arg("d"), py::arg("c") = py::none(),
          py::call_guard<py::gil_scoped_release>(),
          "D = A @ B.T (+ C) for bf16 A [M, K] and B [N, K]; d is bf16 or fp32 [M, N]; c (fp32) needs an fp32 d.");
    m.def("m_grouped_fp8_gemm_nt_contiguous", &m_grouped_fp8_gemm_nt_contiguous, py::arg("a"), py::arg("b"),
          py::arg("d"), py::arg("m_indices"), py::call_guard<py::gil_scoped_release>(),
          "MoE GEMM over experts' rows concatenated along M: D[r] = A[r] @ B[m_indices[r]].T.\n"
          "a = (e4m3 [M, K], scales), b = (e4m3 [G, N, K], scales [G, ceil(N/128), K/128]), d [M, N];\n"
          "m_indices int32 [M], -1 for padding rows (their D rows are left untouched).");
    m.def("m_grouped_bf16_gemm_nt_contiguous", &m_grouped_bf16_gemm_nt_contiguous, py::arg("a"), py::arg("b"),
          py::arg("d"), py::arg("m_indices"), py::call_guard<py::gil_scoped_release>(),
          "bf16 version of m_grouped_fp8_gemm_nt_contiguous: a [M, K], b [G, N, K], d [M, N].");
    m.def("m_grouped_fp8_gemm_nt_masked", &m_grouped_fp8_gemm_nt_masked, py::arg("a"), py::arg("b"), py::arg("d"),
          py::arg("masked_m"), py::arg("expected_m"), py::call_guard<py::gil_scoped_release>(),
          "MoE GEMM per group: D[g, :masked_m[g]] = A[g, :masked_m[g]] @ B[g].T. a = (e4m3 [G, M, K], scales),\n"
          "b = (e4m3 [G, N, K], scales), d [G, M, N]; masked_m int32 [G] on the GPU (CUDA-graph capturable).");
    m.def("m_grouped_bf16_gemm_nt_masked", &m_grouped_bf16_gemm_nt_masked, py::arg("a"), py::arg("b"), py::arg("d"),
          py::arg("masked_m"), py::arg("expected_m"), py::call_guard<py::gil_scoped_release>(),
          "bf16 version of m_grouped_fp8_gemm_nt_masked: a [G, M, K], b [G, N, K], d [G, M, N].");
    m.def("get_mk_alignment_for_contiguous_layout", &get_mk_alignment_for_contiguous_layout,
          "Rows of each expert's segment in the contiguous layout are a multiple of this.");
    m.def("get_num_sms", &get_num_sms, "SMs the kernels use on the current device.");
    m.def("set_num_sms", &set_num_sms, py::arg("num_sms"), "Limit the SMs the kernels use on the current device.");
    m.def("kernel_sources", &kernel_sources,
          "(name, CUDA source) of every kernel instantiation the API can select; for compile tests.");
}

void bind_jit(py::module_& m) {
    m.def(
        "init",
        [](std::string include_dir, std::string nvrtc_lib, std::string cuda_home, std::string cuda_include,
           std::string cache_dir) {
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
        py::arg("name"), py::arg("source"), py::arg("entry") = "deep_gemm_kernel", py::arg("arch") = "sm_90a",
        "Compile (or fetch from the caches) one kernel without loading it; needs no GPU. "
        "Returns dict(compiler=..., from_cache=..., size=...).");

    using Dim3 = std::tuple<unsigned, unsigned, unsigned>;
    m.def(
        "jit_launch",
        [](std::string name, std::string source, Dim3 grid, Dim3 block, unsigned shared_bytes, unsigned cluster_x,
           std::vector<uint64_t> args, uintptr_t stream, std::string entry) {
            py::gil_scoped_release release;
            const jit::Kernel& kernel =
                jit::get_kernel(jit::KernelSource{std::move(name), std::move(source), std::move(entry)});
            std::vector<void*> params;
            for (auto& arg : args) params.push_back(&arg);
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

}  // namespace

// GIL-free on free-threaded CPython (a no-op elsewhere). Safe because the binding
// keeps no state of its own, and the runtime's shared state is already guarded for
// concurrent callers: fp8_gemm_nt, jit_compile and jit_launch release the GIL even on
// GIL builds. The rest touch only the JIT state (swapped under a mutex, old states
// kept alive), the SM count (atomic) and device properties (mutex-guarded cache).
PYBIND11_MODULE(_C, m, py::mod_gil_not_used()) {
    m.doc() = "deep_gemm's compiled extension: a thin binding over libdeep_gemm_runtime";
    py::register_local_exception_translator(translate_c10_errors);
    bind_jit(m);
    bind_gemm(m);
}
