#include "tma.hpp"

#include "../jit/runtime.hpp"

namespace deep_gemm::kernels {
namespace {

// The driver orders dimensions innermost first; elements are read contiguously.
template <int kRank>
CUtensorMap encode(const void* base, CUtensorMapDataType dtype, const cuuint64_t (&dims)[kRank],
                   const cuuint64_t (&stride_bytes)[kRank - 1], const cuuint32_t (&box)[kRank],
                   CUtensorMapSwizzle swizzle) {
    CUtensorMap map;
    cuuint32_t element_strides[kRank];
    for (cuuint32_t& stride : element_strides) stride = 1;
    jit::check_driver(jit::driver().cuTensorMapEncodeTiled(
                          &map, dtype, kRank, const_cast<void*>(base), dims, stride_bytes, box, element_strides,
                          CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                          CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE),
                      "cuTensorMapEncodeTiled");
    return map;
}

}  // namespace

CUtensorMap make_tma_2d(const void* base, CUtensorMapDataType dtype, uint64_t rows,
                        uint64_t cols, uint64_t row_stride_bytes, uint32_t box_rows, uint32_t box_cols,
                        CUtensorMapSwizzle swizzle) {
    return encode<2>(base, dtype, {cols, rows}, {row_stride_bytes}, {box_cols, box_rows}, swizzle);
}

CUtensorMap make_tma_3d(const void* base, CUtensorMapDataType dtype, const std::array<uint64_t, 3>& dims,
                        const std::array<uint64_t, 2>& stride_bytes, const std::array<uint32_t, 3>& box,
                        CUtensorMapSwizzle swizzle) {
    return encode<3>(base, dtype, {dims[0], dims[1], dims[2]}, {stride_bytes[0], stride_bytes[1]},
                     {box[0], box[1], box[2]}, swizzle);
}

}  // namespace deep_gemm::kernels
