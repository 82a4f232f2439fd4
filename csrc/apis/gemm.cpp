#include "gemm.hpp"

#include <c10/util/Exception.h>

#include <sstream>

#include "../jit_kernels/fp8_gemm.hpp"
#include "device.hpp"

namespace deep_gemm::api {
namespace {

constexpr int64_t kBlockK = 128;
constexpr int64_t kTmaAlignment = 16;  // bytes: TMA base addresses and row strides

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t align(int64_t x, int64_t to) { return ceil_div(x, to) * to; }

std::string shape_of(const at::Tensor& t) {
    std::ostringstream out;
    out << t.sizes();
    return out.str();
}

// Checks one tensor argument; `name` is how the user passed it (e.g. "a[0]").
void check_tensor(const char* op, const char* name, const at::Tensor& t, std::initializer_list<at::ScalarType> dtypes,
                  int64_t dim) {
    TORCH_CHECK_VALUE(t.defined(), op, ": ", name, " is an undefined tensor");
    bool dtype_ok = false;
    for (at::ScalarType dtype : dtypes) dtype_ok |= t.scalar_type() == dtype;
    if (!dtype_ok) {
        std::ostringstream expected;
        for (at::ScalarType dtype : dtypes) expected << (expected.tellp() > 0 ? " or " : "") << dtype;
        TORCH_CHECK_TYPE(false, op, ": ", name, " must have dtype ", expected.str(), ", got ", t.scalar_type());
    }
    TORCH_CHECK_VALUE(t.dim() == dim, op, ": ", name, " must be ", dim, "-D, got shape ", shape_of(t));
}

void check_shape(const char* op, const char* name, const at::Tensor& t, std::initializer_list<int64_t> expected,
                 const char* meaning) {
    TORCH_CHECK_VALUE(t.sizes() == at::IntArrayRef(expected), op, ": ", name, " must have shape ", meaning, " = ",
                      at::IntArrayRef(expected), ", got ", shape_of(t));
}

void check_aligned(const char* op, const char* name, const at::Tensor& t) {
    TORCH_CHECK_VALUE(reinterpret_cast<uintptr_t>(t.data_ptr()) % kTmaAlignment == 0, op, ": ", name,
                      " must start at a 16-byte aligned address (a fresh allocation or a view at a ",
                      "16-byte multiple offset)");
}

}  // namespace

void fp8_gemm_nt(const ScaledTensor& a, const ScaledTensor& b, const at::Tensor& d,
                 const std::optional<at::Tensor>& c) {
    constexpr const char* op = "fp8_gemm_nt";
    const at::Tensor& a_data = a.first;
    const at::Tensor& sfa = a.second;
    const at::Tensor& b_data = b.first;
    const at::Tensor& sfb = b.second;

    check_tensor(op, "a[0]", a_data, {at::kFloat8_e4m3fn}, 2);
    check_tensor(op, "a[1]", sfa, {at::kFloat}, 2);
    check_tensor(op, "b[0]", b_data, {at::kFloat8_e4m3fn}, 2);
    check_tensor(op, "b[1]", sfb, {at::kFloat}, 2);
    check_tensor(op, "d", d, {at::kBFloat16, at::kFloat}, 2);
    if (c.has_value()) {
        check_tensor(op, "c", *c, {at::kFloat}, 2);
        TORCH_CHECK_TYPE(d.scalar_type() == at::kFloat, op, ": accumulating into c needs d to be torch.float32, got ",
                         d.scalar_type());
    }

    const int64_t m = a_data.size(0), k = a_data.size(1), n = b_data.size(0);
    TORCH_CHECK_VALUE(b_data.size(1) == k, op, ": a[0] is [M, K] = ", shape_of(a_data), " and b[0] is [N, K] = ",
                      shape_of(b_data), ": K differs");
    TORCH_CHECK_VALUE(k > 0 && k % kBlockK == 0, op, ": K must be a positive multiple of 128 (one scale block), got K = ",
                      k);
    for (const auto& [name, t] : {std::pair{"a[0]", &a_data}, {"b[0]", &b_data}, {"b[1]", &sfb}, {"d", &d}})
        TORCH_CHECK_VALUE(t->is_contiguous(), op, ": ", name, " must be contiguous (row-major), got strides ",
                          t->strides());
    check_shape(op, "d", d, {m, n}, "[M, N]");
    if (c.has_value()) {
        check_shape(op, "c", *c, {m, n}, "[M, N]");
        TORCH_CHECK_VALUE(c->is_contiguous(), op, ": c must be contiguous (row-major), got strides ", c->strides());
    }

    const int64_t k_blocks = k / kBlockK;
    check_shape(op, "a[1]", sfa, {m, k_blocks}, "[M, K / 128]");
    const int64_t padded_m = align(m, kTmaAlignment / static_cast<int64_t>(sizeof(float)));
    TORCH_CHECK_VALUE(sfa.stride(0) == 1 && (k_blocks == 1 || sfa.stride(1) == padded_m), op,
                      ": a[1] must be in the MN-major TMA-aligned layout, strides (1, ", padded_m,
                      "), got strides ", sfa.strides(), "; convert it with deep_gemm.get_mn_major_tma_aligned_tensor");
    check_shape(op, "b[1]", sfb, {ceil_div(n, kBlockK), k_blocks}, "[ceil(N / 128), K / 128]");

    // Devices last, so that shape and layout errors are reported (and testable) on CPU tensors too.
    std::vector<std::pair<const char*, const at::Tensor*>> tensors = {
        {"a[0]", &a_data}, {"a[1]", &sfa}, {"b[0]", &b_data}, {"b[1]", &sfb}, {"d", &d}};
    if (c.has_value()) tensors.emplace_back("c", &*c);
    for (const auto& [name, t] : tensors) {
        TORCH_CHECK_VALUE(t->is_cuda(), op, ": ", name, " must be a CUDA tensor, got one on ", t->device());
        TORCH_CHECK_VALUE(t->device() == d.device(), op, ": ", name, " is on ", t->device(), " but d is on ",
                          d.device(), "; all tensors must be on one device");
        check_aligned(op, name, *t);
    }
    require_sm90(d, op);

    if (m == 0 || n == 0) return;
    kernels::launch_fp8_gemm_nt(a_data, sfa, b_data, sfb, d, c, get_num_sms());
}

std::vector<std::pair<std::string, std::string>> kernel_sources() {
    std::vector<std::pair<std::string, std::string>> sources;
    for (const kernels::FP8GemmConfig& config : kernels::all_fp8_gemm_configs()) {
        jit::KernelSource source = config.source();
        sources.emplace_back(std::move(source.name), std::move(source.source));
    }
    return sources;
}

}  // namespace deep_gemm::api
