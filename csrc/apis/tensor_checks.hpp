// Argument checks shared by the indexer, hyperconnection and einsum entry points:
// each raises a c10 error (TypeError for a dtype, ValueError otherwise) naming the
// operation, the argument and what was expected.
#pragma once

#include <ATen/Tensor.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

namespace deep_gemm::api::checks {

inline std::string shape_of(const at::Tensor& t) {
    std::ostringstream out;
    out << t.sizes();
    return out.str();
}

inline void dtype(const char* op, const char* name, const at::Tensor& t, std::initializer_list<at::ScalarType> dtypes) {
    TORCH_CHECK_VALUE(t.defined(), op, ": ", name, " is an undefined tensor");
    for (at::ScalarType d : dtypes)
        if (t.scalar_type() == d) return;
    std::ostringstream expected;
    for (at::ScalarType d : dtypes) expected << (expected.tellp() > 0 ? " or " : "") << d;
    TORCH_CHECK_TYPE(false, op, ": ", name, " must have dtype ", expected.str(), ", got ", t.scalar_type());
}

inline void rank(const char* op, const char* name, const at::Tensor& t, int64_t dim, const char* meaning) {
    TORCH_CHECK_VALUE(t.dim() == dim, op, ": ", name, " must be ", dim, "-D ", meaning, ", got shape ", shape_of(t));
}

inline void shape(const char* op, const char* name, const at::Tensor& t, std::vector<int64_t> expected,
                  const char* meaning) {
    TORCH_CHECK_VALUE(t.sizes() == at::IntArrayRef(expected), op, ": ", name, " must have shape ", meaning, " = ",
                      at::IntArrayRef(expected), ", got ", shape_of(t));
}

inline void contiguous(const char* op, const char* name, const at::Tensor& t) {
    TORCH_CHECK_VALUE(t.is_contiguous(), op, ": ", name, " must be contiguous (row-major), got strides ",
                      t.strides());
}

// Every tensor on the same CUDA device as the first.
inline void devices(const char* op, const std::vector<std::pair<const char*, const at::Tensor*>>& tensors) {
    const at::Tensor& first = *tensors.front().second;
    for (const auto& [name, t] : tensors) {
        TORCH_CHECK_VALUE(t->is_cuda(), op, ": ", name, " must be a CUDA tensor, got one on ", t->device());
        TORCH_CHECK_VALUE(t->device() == first.device(), op, ": ", name, " is on ", t->device(), " but ",
                          tensors.front().first, " is on ", first.device(), "; all tensors must be on one device");
    }
}

// TMA reads the tensor: its data must start at a 16-byte aligned address.
inline void aligned16(const char* op, const char* name, const at::Tensor& t) {
    TORCH_CHECK_VALUE(reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0, op, ": ", name,
                      " must start at a 16-byte aligned address (a fresh allocation or a view at a 16-byte multiple "
                      "offset)");
}

}  // namespace deep_gemm::api::checks
