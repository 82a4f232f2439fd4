#include "tma.hpp"

#include "../jit/runtime.hpp"

namespace deep_gemm::kernels {

CUtensorMap make_tma_2d(const void* base, CUtensorMapDataType dtype, uint64_t rows,
                        uint64_t cols, uint64_t row_stride_bytes, uint32_t box_rows, uint32_t box_cols,
                        CUtensorMapSwizzle swizzle) {
    CUtensorMap map;
    // The driver orders dimensions innermost first.
    const cuuint64_t dims[2] = {cols, rows};
    const cuuint64_t strides[1] = {row_stride_bytes};
    const cuuint32_t box[2] = {box_cols, box_rows};
    const cuuint32_t element_strides[2] = {1, 1};
    jit::check_driver(jit::driver().cuTensorMapEncodeTiled(
                          &map, dtype, 2, const_cast<void*>(base), dims, strides, box, element_strides,
                          CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                          CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE),
                      "cuTensorMapEncodeTiled");
    return map;
}

CUtensorMap make_tma_3d(const void* base, CUtensorMapDataType dtype, const std::array<uint64_t, 3>& dims,
                        const std::array<uint64_t, 2>& stride_bytes, const std::array<uint32_t, 3>& box,
                        CUtensorMapSwizzle swizzle) {
    CUtensorMap map;
    const cuuint64_t dims_[3] = {dims[0], dims[1], dims[2]};
    const cuuint64_t strides[2] = {stride_bytes[0], stride_bytes[1]};
    const cuuint32_t box_[3] = {box[0], box[1], box[2]};
    const cuuint32_t element_strides[3] = {1, 1, 1};
    jit::check_driver(jit::driver().cuTensorMapEncodeTiled(
                          &map, dtype, 3, const_cast<void*>(base), dims_, strides, box_, element_strides,
                          CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                          CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE),
                      "cuTensorMapEncodeTiled");
    return map;
}

}  // namespace deep_gemm::kernels
