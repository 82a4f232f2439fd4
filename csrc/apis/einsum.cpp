#include "einsum.hpp"

#include <ATen/ops/bmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>

#include "../jit_kernels/einsum.hpp"
#include "../jit_kernels/gemm.hpp"
#include "device.hpp"
#include "tensor_checks.hpp"

namespace deep_gemm::api {
namespace {

void last_dim_unit(const char* op, const char* name, const at::Tensor& t) {
    TORCH_CHECK_VALUE(t.stride(-1) == 1 || t.size(-1) <= 1, op, ": ", name,
                      " must have unit stride in its last dimension, got strides ", t.strides());
}

// d [m, n] (+)= sum over the batch of a[b] @ b[b]^T, as one GEMM over (batch, k).
void bmk_bnk_mn(const char* op, const at::Tensor& a, const at::Tensor& b, const at::Tensor& d,
                const std::optional<at::Tensor>& c) {
    checks::rank(op, "a", a, 3, "[batch, m, k]");
    checks::rank(op, "b", b, 3, "[batch, n, k]");
    const int64_t s = a.size(0), m = a.size(1), k = a.size(2), n = b.size(1);
    TORCH_CHECK_VALUE(b.size(0) == s && b.size(2) == k, op, ": a has shape ", checks::shape_of(a), " and b has shape ",
                      checks::shape_of(b), ": the batch or k differs");
    checks::shape(op, "d", d, {m, n}, "[m, n]");
    if (d.scalar_type() == at::kFloat) {
        TORCH_CHECK_VALUE(c.has_value() && c->data_ptr() == d.data_ptr() && c->sizes() == d.sizes() &&
                              c->strides() == d.strides(),
                          op, ": an fp32 d is accumulated into: pass c=d");
    } else {
        TORCH_CHECK_VALUE(!c.has_value(), op, ": a bf16 d is overwritten: c must be None (pass an fp32 d and c=d "
                          "to accumulate)");
    }
    checks::contiguous(op, "a", a);
    checks::contiguous(op, "b", b);
    checks::contiguous(op, "d", d);
    checks::devices(op, {{"a", &a}, {"b", &b}, {"d", &d}});
    require_sm90(d, op);
    if (m == 0 || n == 0) return;
    const bool fp32 = d.scalar_type() == at::kFloat;
    if (s == 0 || k == 0) {
        if (!fp32) d.zero_();
        return;
    }
    if (k % 8 != 0) {  // rows TMA cannot stride: one cuBLAS GEMM over (batch, k) copies
        const at::Tensor a2 = a.permute({1, 0, 2}).reshape({m, s * k});
        const at::Tensor b2 = b.permute({1, 0, 2}).reshape({n, s * k});
        const at::Tensor product = at::mm(a2, b2.t(), at::kFloat);
        fp32 ? d.add_(product) : d.copy_(product);
        return;
    }
    checks::aligned16(op, "a", a);
    checks::aligned16(op, "b", b);
    if (fp32) {
        kernels::launch_bmk_bnk_mn(a, b, d, get_num_sms());
        return;
    }
    const at::Tensor sum = at::zeros({m, n}, d.options().dtype(at::kFloat));
    kernels::launch_bmk_bnk_mn(a, b, sum, get_num_sms());
    d.copy_(sum);
}

bool aligned16(const at::Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0; }

// A 3D tensor map's strides for [b, h, n]: rows and heads apart by multiples of 16
// bytes, each stride spanning the dimensions inside it (not overlapping).
bool tma_3d_strides(const at::Tensor& t) {
    const int64_t bytes = t.element_size();
    return (t.stride(0) * bytes) % 16 == 0 && (t.stride(1) * bytes) % 16 == 0 && t.stride(1) >= t.size(2) &&
           t.stride(0) >= t.size(1) * t.stride(1);
}

// The per-head kernel's TMA store of a bf16 d.
bool per_head_tma_store_fits(const at::Tensor& d) { return d.stride(2) == 1 && tma_3d_strides(d); }

// b's rows (of all heads) evenly strided by a multiple of 16 bytes: one 2D tensor map.
bool rows_evenly_strided(const at::Tensor& b) {
    return b.stride(2) == 1 && b.stride(1) % 8 == 0 && b.stride(0) == b.size(1) * b.stride(1) && aligned16(b);
}

// The per-head kernel's layout: a packed, b's rows evenly strided (heads b.size(1)
// rows apart, N or K), K whole 64-element blocks, 16-byte aligned data; d fit for the
// TMA store, or packed (stored from registers).
bool per_head_kernel_fits(const at::Tensor& a, const at::Tensor& b, const at::Tensor& d) {
    return a.size(2) % 64 == 0 && a.is_contiguous() && (per_head_tma_store_fits(d) || d.is_contiguous()) &&
           rows_evenly_strided(b) && aligned16(a) && aligned16(d);
}

// The GEMM kernel grouped by columns (gemm.cuh, as fp8_einsum): a and d through 3D
// tensor maps; b as [h * d, r] K-major rows ('bhr,hdr->bhd'), or MN-major in a 3D map
// ('bhd,hdr->bhr': [h, K = d, N = r]).
bool columns_gemm_fits(bool bhr, const at::Tensor& a, const at::Tensor& b, const at::Tensor& d) {
    const bool b_fits = bhr ? rows_evenly_strided(b) : b.stride(2) == 1 && tma_3d_strides(b) && aligned16(b);
    return b.size(2) > 0 && b_fits && aligned16(a) && tma_3d_strides(a) && aligned16(d) && per_head_tma_store_fits(d);
}

}  // namespace

void einsum(const std::string& expr, const at::Tensor& a, const at::Tensor& b, const at::Tensor& d,
            const std::optional<at::Tensor>& c, bool use_cublaslt) {
    const char* op = "einsum";
    checks::dtype(op, "a", a, {at::kBFloat16});
    checks::dtype(op, "b", b, {at::kBFloat16});
    checks::dtype(op, "d", d, {at::kBFloat16, at::kFloat});
    if (c.has_value())
        TORCH_CHECK_TYPE(c->scalar_type() == d.scalar_type(), op, ": c must have d's dtype ", d.scalar_type(),
                         ", got ", c->scalar_type());
    if (expr == "bmk,bnk->mn") {
        TORCH_CHECK_VALUE(!use_cublaslt, op, ": 'bmk,bnk->mn' has no cuBLASLt path (use_cublaslt=True)");
        bmk_bnk_mn(op, a, b, d, c);
        return;
    }
    const bool bhr = expr == "bhr,hdr->bhd";
    TORCH_CHECK_VALUE(bhr || expr == "bhd,hdr->bhr", op, ": unsupported expression '", expr,
                      "'; SM90 has 'bmk,bnk->mn', 'bhr,hdr->bhd' and 'bhd,hdr->bhr'");
    TORCH_CHECK_VALUE(!c.has_value(), op, ": '", expr, "' takes no c");
    TORCH_CHECK_TYPE(d.scalar_type() == at::kBFloat16, op, ": '", expr, "' needs a bf16 d, got ", d.scalar_type());
    checks::rank(op, "a", a, 3, bhr ? "[b, h, r]" : "[b, h, d]");
    checks::rank(op, "b", b, 3, "[h, d, r]");
    checks::rank(op, "d", d, 3, bhr ? "[b, h, d]" : "[b, h, r]");
    const int64_t batch = a.size(0), heads = a.size(1);
    const int64_t dim = b.size(1), rank = b.size(2);
    checks::shape(op, "a", a, {batch, heads, bhr ? rank : dim}, bhr ? "[b, h, r]" : "[b, h, d]");
    checks::shape(op, "b", b, {heads, dim, rank}, "[h, d, r]");
    checks::shape(op, "d", d, {batch, heads, bhr ? dim : rank}, bhr ? "[b, h, d]" : "[b, h, r]");
    last_dim_unit(op, "a", a);
    last_dim_unit(op, "b", b);
    last_dim_unit(op, "d", d);
    checks::devices(op, {{"a", &a}, {"b", &b}, {"d", &d}});
    require_sm90(d, op);
    if (d.numel() == 0) return;
    // One persistent GEMM over all heads (its tile heuristic, e.g. 64-row tiles for a small
    // batch), b read as it lies: K-major for 'bhr,hdr->bhd', MN-major ([h, K = d, N = r], r
    // contiguous) for 'bhd,hdr->bhr'. Otherwise the per-head kernel, which stores d from
    // registers where its rows are not 16-byte strided.
    if (!use_cublaslt && columns_gemm_fits(bhr, a, b, d)) {
        const int64_t n = bhr ? dim : rank, k = bhr ? rank : dim;
        kernels::GemmProblem problem{kernels::InputType::BF16, kernels::GemmType::GroupedColumns, a, at::Tensor(), b,
                                     at::Tensor(), d, std::nullopt, at::Tensor(), static_cast<int>(batch),
                                     static_cast<int>(n), static_cast<int>(k), static_cast<int>(heads),
                                     static_cast<int>(batch)};
        problem.mn_major_b = !bhr;
        kernels::launch_gemm(problem, get_num_sms());
        return;
    }
    if (!use_cublaslt && per_head_kernel_fits(a, b, d)) {
        kernels::launch_per_head_gemm(a, b, d, !bhr, per_head_tma_store_fits(d));
        return;
    }
    // cuBLAS: [b, K] @ [K, N] with the heads as its batch; d written in place.
    at::Tensor out = d.transpose(0, 1);
    at::bmm_out(out, a.transpose(0, 1), bhr ? b.transpose(1, 2) : b);
}

void fp8_einsum(const std::string& expr, const std::pair<at::Tensor, at::Tensor>& a,
                const std::pair<at::Tensor, at::Tensor>& b, const at::Tensor& d, const std::optional<at::Tensor>& c,
                int recipe_m, int recipe_n, int recipe_k) {
    const char* op = "fp8_einsum";
    TORCH_CHECK_VALUE(expr == "bhr,hdr->bhd", op, ": unsupported expression '", expr, "'; SM90 has 'bhr,hdr->bhd'");
    TORCH_CHECK_VALUE(recipe_m == 1 && recipe_n == 128 && recipe_k == 128, op,
                      ": SM90 takes recipe (1, 128, 128), got (", recipe_m, ", ", recipe_n, ", ", recipe_k, ")");
    const auto& [x, sx] = a;
    const auto& [y, sy] = b;
    checks::dtype(op, "a[0]", x, {at::kFloat8_e4m3fn});
    checks::dtype(op, "a[1]", sx, {at::kFloat});
    checks::dtype(op, "b[0]", y, {at::kFloat8_e4m3fn});
    checks::dtype(op, "b[1]", sy, {at::kFloat});
    checks::dtype(op, "d", d, {at::kBFloat16, at::kFloat});
    checks::rank(op, "a[0]", x, 3, "[b, h, r]");
    checks::rank(op, "b[0]", y, 3, "[h, d, r]");
    const int64_t batch = x.size(0), heads = x.size(1), rank = x.size(2), dim = y.size(1);
    const int64_t r_blocks = (rank + 127) / 128, d_blocks = (dim + 127) / 128;
    checks::shape(op, "b[0]", y, {heads, dim, rank}, "[h, d, r]");
    checks::shape(op, "a[1]", sx, {batch, heads, r_blocks}, "[b, h, ceil(r / 128)]");
    checks::shape(op, "b[1]", sy, {heads, d_blocks, r_blocks}, "[h, ceil(d / 128), ceil(r / 128)]");
    checks::shape(op, "d", d, {batch, heads, dim}, "[b, h, d]");
    if (c.has_value()) {
        checks::dtype(op, "c", *c, {at::kFloat});
        TORCH_CHECK_TYPE(d.scalar_type() == at::kFloat, op, ": adding c needs an fp32 d, got ", d.scalar_type());
        checks::shape(op, "c", *c, {batch, heads, dim}, "[b, h, d]");
    }
    TORCH_CHECK_VALUE(rank > 0 && rank % 16 == 0, op, ": r must be a positive multiple of 16 (rows of a[0] and b[0] "
                      "16-byte aligned for TMA), got r = ", rank);
    last_dim_unit(op, "a[0]", x);
    last_dim_unit(op, "d", d);
    checks::contiguous(op, "b[0]", y);
    checks::contiguous(op, "b[1]", sy);
    std::vector<std::pair<const char*, const at::Tensor*>> tensors = {
        {"a[0]", &x}, {"a[1]", &sx}, {"b[0]", &y}, {"b[1]", &sy}, {"d", &d}};
    if (c.has_value()) tensors.emplace_back("c", &*c);
    checks::devices(op, tensors);
    checks::aligned16(op, "b[0]", y);
    require_sm90(d, op);
    if (d.numel() == 0) return;
    // One GEMM over all heads, grouped by columns (gemm.cuh): x [b, h, r] and d [b, h, d]
    // go through 3D tensor maps, which need 16-byte aligned data and strides, each stride
    // spanning the dimensions inside it (the layout the driver documents); an fp32 d,
    // written from registers, only aligned data. Other layouts go through a copy.
    const at::Tensor x_in = aligned16(x) && tma_3d_strides(x) ? x : at::empty(x.sizes(), x.options()).copy_(x);
    const bool fp32 = d.scalar_type() == at::kFloat;
    const bool d_fits = d.stride(2) == 1 && aligned16(d) && (fp32 || tma_3d_strides(d));
    // bf16: rows padded to 16 bytes, for the TMA store.
    const at::Tensor out =
        d_fits ? d : at::empty({batch, heads, fp32 ? dim : (dim + 7) / 8 * 8}, d.options()).narrow(2, 0, dim);
    // C is read at D's offsets (it may be D itself).
    std::optional<at::Tensor> c_in;
    if (c.has_value()) {
        if (c->strides() == out.strides() && aligned16(*c)) {
            c_in = *c;
        } else {
            out.copy_(*c);
            c_in = out;
        }
    }
    // A's scales as the kernel reads them: per head and K-block, MN-major over b padded to 16 bytes.
    const int64_t padded_batch = (batch + 3) / 4 * 4;
    at::Tensor sfa = at::empty({heads, r_blocks, padded_batch}, sx.options());
    sfa.narrow(2, 0, batch).copy_(sx.permute({1, 2, 0}));
    kernels::launch_gemm({kernels::InputType::FP8, kernels::GemmType::GroupedColumns, x_in, sfa, y, sy, out, c_in,
                          at::Tensor(), static_cast<int>(batch), static_cast<int>(dim), static_cast<int>(rank),
                          static_cast<int>(heads), static_cast<int>(batch)},
                         get_num_sms());
    if (!d_fits) d.copy_(out);
}

}  // namespace deep_gemm::api
