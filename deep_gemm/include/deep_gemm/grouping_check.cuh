// Validation of a grouped GEMM's GPU-resident grouping tensor (see gemm.cuh) in one
// pass of one CTA, so that the host pays one launch and one small read-back instead
// of a chain of tensor ops and syncs. The record it writes names the first offending
// position; the host turns it into the error message.
#pragma once

namespace deep_gemm {

// Values match kernels::GroupingViolation in csrc/jit_kernels/grouping_check.hpp.
enum class GroupingViolation : int {
    None = 0,
    OutOfRange = 1,            // masked: not in [0, M]; contiguous: neither -1 nor in [0, G)
    OtherExpert = 2,           // contiguous: not the expert that the row's block starts with
    ExpertInPaddingBlock = 3,  // contiguous: an expert in a block that starts with padding
    ExpertAfterPadding = 4,    // contiguous: the block's expert again after a padding row
};

// The record: {first offending position or -1, its GroupingViolation, its value,
// (contiguous) the value its block starts with}.
constexpr int kGroupingRecordInts = 4;

// Contiguous: every kBlockRows-row block holds one expert's rows, then only padding
// (-1). Row by row that is: a row continues its predecessor's value or is padding,
// except at the block's start, so the first failing row is the first offending one.
template <bool kMasked, int kBlockRows>
__device__ __forceinline__ GroupingViolation grouping_violation(const int* values, int row, int limit) {
    const int value = __ldg(values + row);
    if constexpr (kMasked) {
        return value < 0 || value > limit ? GroupingViolation::OutOfRange : GroupingViolation::None;
    } else {
        // Loaded unconditionally (row 0 reads itself) so that unrolled rows' loads overlap.
        const int prev = __ldg(values + max(row - 1, 0));
        if (value < -1 || value >= limit) return GroupingViolation::OutOfRange;
        if (value == -1 || value == prev || row % kBlockRows == 0) return GroupingViolation::None;
        const int expert = __ldg(values + row - row % kBlockRows);
        if (expert == -1) return GroupingViolation::ExpertInPaddingBlock;
        return value == expert ? GroupingViolation::ExpertAfterPadding : GroupingViolation::OtherExpert;
    }
}

// values: `count` ints (masked: rows per group, limit = M; contiguous: expert per
// row, limit = G). One CTA of kThreads threads; record: kGroupingRecordInts ints.
template <bool kMasked, int kBlockRows, int kThreads>
__device__ __forceinline__ void check_grouping(const int* values, int count, int limit, int* record) {
    __shared__ int first_bad;
    if (threadIdx.x == 0) first_bad = count;
    __syncthreads();
    // No early exit: valid input (the usual case) is read whole anyway, and a
    // branch-free loop lets the unrolled loads be in flight together.
    int first = count;
#pragma unroll 8
    for (int row = threadIdx.x; row < count; row += kThreads) {
        if (grouping_violation<kMasked, kBlockRows>(values, row, limit) != GroupingViolation::None)
            first = min(first, row);
    }
    if (first < count) atomicMin(&first_bad, first);
    __syncthreads();
    if (threadIdx.x != 0) return;
    const int row = first_bad;
    if (row == count) {
        record[0] = -1;
        record[1] = static_cast<int>(GroupingViolation::None);
        record[2] = record[3] = 0;
        return;
    }
    record[0] = row;
    record[1] = static_cast<int>(grouping_violation<kMasked, kBlockRows>(values, row, limit));
    record[2] = values[row];
    record[3] = kMasked ? 0 : values[row - row % kBlockRows];
}

}  // namespace deep_gemm
