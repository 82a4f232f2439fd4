// TMA descriptors for 2D and 3D row-major tensors.
#pragma once

#include <cuda.h>

#include <array>
#include <cstdint>

namespace deep_gemm::kernels {

// A [rows, cols] view with `row_stride_bytes` between rows, loaded in boxes of
// [box_rows, box_cols] elements. Out-of-bounds parts of a box read as zero.
CUtensorMap make_tma_2d(const void* base, CUtensorMapDataType dtype, uint64_t rows,
                        uint64_t cols, uint64_t row_stride_bytes, uint32_t box_rows, uint32_t box_cols,
                        CUtensorMapSwizzle swizzle);

// A 3D view, dimensions and boxes innermost first; strides (bytes) of the outer two.
CUtensorMap make_tma_3d(const void* base, CUtensorMapDataType dtype, const std::array<uint64_t, 3>& dims,
                        const std::array<uint64_t, 2>& stride_bytes, const std::array<uint32_t, 3>& box,
                        CUtensorMapSwizzle swizzle);

}  // namespace deep_gemm::kernels
