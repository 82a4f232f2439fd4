#include "bindings.hpp"

PYBIND11_MODULE(_C, m) {
    m.doc() = "deep_gemm's compiled extension: a thin binding over libdeep_gemm_runtime";
    bind_jit(m);
    bind_gemm(m);
}
