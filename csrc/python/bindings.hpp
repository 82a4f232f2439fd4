// The pieces of deep_gemm._C, each defined in its own bind_*.cpp.
#pragma once

#include <pybind11/pybind11.h>

void bind_jit(pybind11::module_& m);   // init, jit_compile, jit_cache_dir
void bind_gemm(pybind11::module_& m);  // the GEMM API over torch tensors
