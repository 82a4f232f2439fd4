// Fixed-width integers and the TMA descriptor type without host headers: NVRTC
// has no C library, so neither <cstdint> nor <cuda.h> can be included here.
#pragma once

namespace deep_gemm {

using uint32_t = unsigned int;
using uint64_t = unsigned long long;
static_assert(sizeof(uint32_t) == 4 && sizeof(uint64_t) == 8, "unexpected integer widths");

// Same size and alignment as the driver's CUtensorMap, which the host fills
// with cuTensorMapEncodeTiled and passes by value as a __grid_constant__ parameter.
struct alignas(64) TensorMap {
    unsigned long long opaque[16];
};

}  // namespace deep_gemm
