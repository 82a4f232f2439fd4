// Python names for the GEMM API (csrc/apis). The API raises c10 errors; they
// become TypeError / ValueError / RuntimeError here, without C++ backtraces.
#include <torch/extension.h>

#include "../apis/device.hpp"
#include "../apis/gemm.hpp"
#include "bindings.hpp"

namespace py = pybind11;

void bind_gemm(py::module_& m) {
    using namespace deep_gemm::api;

    py::register_exception_translator([](std::exception_ptr error) {
        try {
            if (error) std::rethrow_exception(error);
        } catch (const c10::TypeError& e) {
            PyErr_SetString(PyExc_TypeError, e.what_without_backtrace());
        } catch (const c10::ValueError& e) {
            PyErr_SetString(PyExc_ValueError, e.what_without_backtrace());
        } catch (const c10::Error& e) {
            PyErr_SetString(PyExc_RuntimeError, e.what_without_backtrace());
        }
    });

    m.def("fp8_gemm_nt", &fp8_gemm_nt, py::arg("a"), py::arg("b"), py::arg("d"), py::arg("c") = py::none(),
          py::call_guard<py::gil_scoped_release>(),
          "D = A @ B.T (+ C) for e4m3 A [M, K] and B [N, K] with DeepGEMM's 1x128 / 128x128 block scales.\n"
          "a and b are (data, scales) pairs; d is bf16 or fp32 [M, N]; c (fp32) needs an fp32 d.");
    m.def("get_num_sms", &get_num_sms, "SMs the kernels use on the current device.");
    m.def("set_num_sms", &set_num_sms, py::arg("num_sms"), "Limit the SMs the kernels use on the current device.");
    m.def("kernel_sources", &kernel_sources,
          "(name, CUDA source) of every kernel instantiation the API can select; for compile tests.");
}
