// torch.Tensor -> at::Tensor without <torch/extension.h> or pybind11's module machinery.
//
// This is torch's own pybind11 caster, not a copy: torch/csrc/utils/pybind.h declares
// exactly this specialisation, and libtorch_python.so defines and exports its load()
// (THPVariable_Check + THPVariable_Unpack) and cast() (THPVariable_Wrap). Calling it
// keeps torch's Python object layout (which changes between torch releases) out of
// deep_gemm, and declaring it here keeps torch's Python layer out of the compile.
// load() touches no pybind11 state, so module.cpp can use it from plain C-API code.
//
// The declaration must match torch's (one definition rule): a class with the single
// member `at::Tensor value` and out-of-line load/cast. Re-check it against
// torch/csrc/utils/pybind.h on every torch pin change (tests/core/test_loader.py
// checks that load() binds to libtorch_python's).
//
// <pybind11/cast.h> declares some inline functions that only <pybind11/pybind11.h>
// defines; GCC warns about them unless torch's headers are system headers, which
// setup.py makes them (-isystem) for this build.
#pragma once

#include <ATen/core/Tensor.h>
#include <pybind11/cast.h>
#include <torch/csrc/Export.h>  // TORCH_PYTHON_API: default visibility, so the calls bind to libtorch_python

namespace pybind11::detail {

template <>
struct TORCH_PYTHON_API type_caster<at::Tensor> {
public:
    PYBIND11_TYPE_CASTER(at::Tensor, const_name("torch.Tensor"));

    bool load(handle src, bool convert);
    static handle cast(const at::Tensor& src, return_value_policy policy, handle parent);
};

}  // namespace pybind11::detail
