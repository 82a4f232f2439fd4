// Host side of the grouping check (deep_gemm/include/deep_gemm/grouping_check.cuh):
// validates a grouped GEMM's GPU-resident m_indices / masked_m with one launch and
// one 16-byte read-back (a single sync of the current stream).
#pragma once

#include <ATen/Tensor.h>

#include "../jit/runtime.hpp"
#include "gemm.hpp"

namespace deep_gemm::kernels {

// Values match deep_gemm::GroupingViolation in grouping_check.cuh.
enum class GroupingViolation {
    None = 0,
    OutOfRange = 1,            // masked: not in [0, M]; contiguous: neither -1 nor in [0, G)
    OtherExpert = 2,           // contiguous: not the expert that the row's block starts with
    ExpertInPaddingBlock = 3,  // contiguous: an expert in a block that starts with padding
    ExpertAfterPadding = 4,    // contiguous: the block's expert again after a padding row
};

struct GroupingReport {
    GroupingViolation violation;  // None: every value is valid, the rest is meaningless
    int position;                 // the first offending position
    int value;                    // grouping[position]
    int block_expert;             // contiguous: the first value of position's kContiguousAlignment-row block
};

// The check's source for a grouped GEMM type (GroupedContiguous or GroupedMasked).
jit::KernelSource grouping_check_source(GemmType type);

// grouping: int32, contiguous, on a CUDA device, not empty. limit: M (masked) or
// the number of experts G (contiguous). Runs on the current stream and waits for it.
GroupingReport check_grouping(GemmType type, const at::Tensor& grouping, int limit);

}  // namespace deep_gemm::kernels
