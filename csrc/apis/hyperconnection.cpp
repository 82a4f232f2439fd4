#include "hyperconnection.hpp"

#include <c10/util/Exception.h>

#include "../jit_kernels/hyperconnection.hpp"
#include "device.hpp"
#include "tensor_checks.hpp"

namespace deep_gemm::api {

void tf32_hc_prenorm_gemm(const at::Tensor& a, const at::Tensor& b, const at::Tensor& d, const at::Tensor& sqr_sum,
                          int num_splits) {
    const char* op = "tf32_hc_prenorm_gemm";
    TORCH_CHECK_VALUE(num_splits >= 0, op, ": num_splits must be None or >= 1, got ", num_splits);
    const bool split = num_splits > 0;
    checks::dtype(op, "a", a, {at::kBFloat16});
    checks::rank(op, "a", a, 2, "[M, K]");
    checks::dtype(op, "b", b, {at::kFloat});
    checks::rank(op, "b", b, 2, "[N, K]");
    checks::dtype(op, "d", d, {at::kFloat});
    checks::dtype(op, "sqr_sum", sqr_sum, {at::kFloat});
    const int64_t m = a.size(0), k = a.size(1), n = b.size(0);
    TORCH_CHECK_VALUE(b.size(1) == k, op, ": a has shape ", checks::shape_of(a), " and b has shape ",
                      checks::shape_of(b), ": K differs");
    TORCH_CHECK_VALUE(n >= 1 && n <= kernels::kMaxHcColumns, op, ": N (b.shape[0]) must be in [1, ",
                      kernels::kMaxHcColumns, "], got ", n);
    TORCH_CHECK_VALUE(k > 0 && k % 8 == 0, op, ": K must be a positive multiple of 8 (16-byte rows), got K = ", k);
    if (split) {
        checks::shape(op, "d", d, {num_splits, m, n}, "[num_splits, M, N]");
        checks::shape(op, "sqr_sum", sqr_sum, {num_splits, m}, "[num_splits, M]");
    } else {
        checks::shape(op, "d", d, {m, n}, "[M, N]");
        checks::shape(op, "sqr_sum", sqr_sum, {m}, "[M]");
    }
    checks::contiguous(op, "a", a);
    checks::contiguous(op, "b", b);
    checks::contiguous(op, "d", d);
    checks::contiguous(op, "sqr_sum", sqr_sum);
    checks::devices(op, {{"a", &a}, {"b", &b}, {"d", &d}, {"sqr_sum", &sqr_sum}});
    checks::aligned16(op, "a", a);
    checks::aligned16(op, "b", b);
    require_sm90(a, op);
    if (m == 0) return;
    kernels::launch_tf32_hc_prenorm_gemm(a, b, d, sqr_sum, num_splits, get_num_sms());
}

}  // namespace deep_gemm::api
