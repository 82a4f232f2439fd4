// torch.Tensor <-> at::Tensor for pybind11, without <torch/extension.h>.
//
// This is torch's own caster, not a copy: torch/csrc/utils/pybind.h declares
// exactly this specialisation, and libtorch_python.so defines and exports its
// load() (THPVariable_Check + THPVariable_Unpack) and cast() (THPVariable_Wrap).
// Declaring it here instead of including that header keeps torch's Python layer
// (Device.h, Dtype.h, python_variable.h, ...) out of every per-CPython compile:
// only ATen/core/Tensor.h is needed for the `value` member. Nothing here depends
// on the layout of torch's Python objects, so it holds for any CPython ABI.
//
// The declaration must match torch's (one definition rule): a class with the
// single member `at::Tensor value` and out-of-line load/cast. Re-check it
// against torch/csrc/utils/pybind.h on every torch pin change.
#pragma once

#include <ATen/core/Tensor.h>
#include <pybind11/pybind11.h>
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
