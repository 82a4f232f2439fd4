#include "layout.hpp"

#include <ATen/ops/empty.h>
#include <ATen/ops/empty_strided.h>
#include <c10/util/Exception.h>

#include <limits>

#include "../jit_kernels/layout.hpp"
#include "device.hpp"
#include "tensor_checks.hpp"

namespace deep_gemm::api {

at::Tensor k_grouped_packed_ue8m0(const at::Tensor& sf, const std::vector<uint64_t>& ks, int gran_k) {
    const char* op = "get_k_grouped_mn_major_tma_aligned_packed_ue8m0_tensor";
    TORCH_CHECK_VALUE(gran_k > 0, op, ": gran_k must be positive, got ", gran_k);
    checks::dtype(op, "sf", sf, {at::kFloat});
    checks::rank(op, "sf", sf, 2, "[sum(ceil(ks / gran_k)), MN]");
    constexpr int64_t kIntMax = std::numeric_limits<int>::max();
    std::vector<int> sf_rows;
    sf_rows.reserve(ks.size());
    int64_t total_rows = 0, packed_rows = 0;
    for (size_t g = 0; g < ks.size(); ++g) {
        TORCH_CHECK_VALUE(ks[g] <= static_cast<uint64_t>(kIntMax), op, ": ks_cpu[", g, "] = ", ks[g],
                          " is out of range");
        const int64_t rows = (static_cast<int64_t>(ks[g]) + gran_k - 1) / gran_k;
        sf_rows.push_back(static_cast<int>(rows));
        total_rows += rows;
        packed_rows += (rows + 3) / 4;
        TORCH_CHECK_VALUE(total_rows <= kIntMax, op, ": ks_cpu needs more than 2**31 - 1 scale rows");
    }
    TORCH_CHECK_VALUE(sf.size(0) == total_rows, op, ": sf has ", sf.size(0), " rows but ks_cpu needs sum(ceil(k / ",
                      gran_k, ")) = ", total_rows);
    TORCH_CHECK_VALUE(sf.size(1) <= kIntMax, op, ": MN = ", sf.size(1), " is out of range");
    checks::contiguous(op, "sf", sf);
    checks::devices(op, {{"sf", &sf}});
    const at::Tensor out = at::empty({packed_rows, sf.size(1)}, sf.options().dtype(at::kInt));
    if (out.numel() == 0) return out;
    require_sm90(sf, op);
    kernels::launch_pack_k_grouped_ue8m0(sf, sf_rows, out);
    return out;
}

at::Tensor mn_major_packed_ue8m0(const at::Tensor& sf) {
    const char* op = "get_mn_major_tma_aligned_packed_ue8m0_tensor";
    checks::dtype(op, "sf", sf, {at::kFloat});
    TORCH_CHECK_VALUE(sf.dim() == 2 || sf.dim() == 3, op, ": sf must be 2-D [MN, SF_K] or 3-D [G, MN, SF_K], got shape ",
                      checks::shape_of(sf));
    const at::Tensor batched = sf.dim() == 3 ? sf : sf.unsqueeze(0);
    const int64_t groups = batched.size(0), mn = batched.size(1), sf_k = batched.size(2);
    const int64_t packed_k = (sf_k + 3) / 4, aligned_mn = (mn + 3) / 4 * 4;
    constexpr int64_t kGridMax = 65535;  // gridDim.y and .z
    TORCH_CHECK_VALUE(groups <= kGridMax && packed_k <= kGridMax, op, ": sf has shape ", checks::shape_of(sf),
                      ": G and ceil(SF_K / 4) must be at most ", kGridMax);
    TORCH_CHECK_VALUE(aligned_mn * packed_k <= std::numeric_limits<int>::max(), op, ": sf has shape ",
                      checks::shape_of(sf), ": align(MN, 4) * ceil(SF_K / 4) must be below 2**31");
    checks::devices(op, {{"sf", &sf}});
    at::Tensor out = at::empty_strided({groups, mn, packed_k}, {aligned_mn * packed_k, 1, aligned_mn},
                                       sf.options().dtype(at::kInt));
    if (out.numel() > 0) {
        require_sm90(sf, op);
        kernels::launch_transpose_and_pack_ue8m0(batched, out);
    }
    return sf.dim() == 3 ? out : out.squeeze(0);
}

}  // namespace deep_gemm::api
