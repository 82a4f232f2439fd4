#include "gemm.hpp"

#include <c10/cuda/CUDAGraphsC10Utils.h>
#include <c10/util/Exception.h>

#include <cstdlib>
#include <functional>
#include <sstream>
#include <string_view>

#include "../jit_kernels/gemm.hpp"
#include "../jit_kernels/grouping_check.hpp"
#include "../jit_kernels/attention.hpp"
#include "../jit_kernels/einsum.hpp"
#include "../jit_kernels/hyperconnection.hpp"
#include "../jit_kernels/layout.hpp"
#include "device.hpp"
#include "tensor_checks.hpp"

namespace deep_gemm::api {
namespace {

using kernels::ceil_div;
using kernels::GemmType;
using kernels::GroupingViolation;
using kernels::InputType;
using kernels::kContiguousAlignment;
using kernels::kScaleBlock;

constexpr int64_t kTmaAlignment = 16;  // bytes: TMA base addresses and row strides

int64_t align(int64_t x, int64_t to) { return ceil_div(x, to) * to; }

using checks::shape_of;

// Checks one tensor's dtype and rank; `name` is how the user passed it (e.g. "a[0]").
void check_tensor(const char* op, const char* name, const at::Tensor& t, std::initializer_list<at::ScalarType> dtypes,
                  int64_t dim) {
    checks::dtype(op, name, t, dtypes);
    TORCH_CHECK_VALUE(t.dim() == dim, op, ": ", name, " must be ", dim, "-D, got shape ", shape_of(t));
}

// Per-row FP8 scales (A's; 1D1D B's too), [(G,) MN, ceil(K/128)], MN-major with each
// K-block's column padded to 16 bytes. `name` is "a[1]" or "b[1]", `mn` M or N.
void check_mn_major_scales(const char* op, const char* name, const at::Tensor& sf, int64_t groups, int64_t mn,
                           int64_t k_blocks) {
    const char* rows = name[0] == 'a' ? "M" : "N";
    const int64_t padded = align(mn, kTmaAlignment / static_cast<int64_t>(sizeof(float)));
    if (groups == 0) {
        checks::shape(op, name, sf, {mn, k_blocks}, (std::string("[") + rows + ", ceil(K / 128)]").c_str());
    } else {
        checks::shape(op, name, sf, {groups, mn, k_blocks}, (std::string("[G, ") + rows + ", ceil(K / 128)]").c_str());
    }
    const int64_t dim = sf.dim();
    const bool mn_major = sf.stride(dim - 2) == 1 && (k_blocks == 1 || sf.stride(dim - 1) == padded) &&
                          (groups <= 1 || sf.stride(0) == padded * k_blocks);
    TORCH_CHECK_VALUE(mn_major, op, ": ", name, " must be in the MN-major TMA-aligned layout, strides ",
                      groups == 0 ? "" : "(" + std::to_string(padded * k_blocks) + ", ", "(1, ", padded,
                      "), got strides ", sf.strides(), "; convert it with deep_gemm.get_mn_major_tma_aligned_tensor");
}

struct Call {
    const char* op;
    InputType input;
    GemmType type;
    const at::Tensor& a;
    const at::Tensor* sfa;  // FP8 only
    const at::Tensor& b;
    const at::Tensor* sfb;  // FP8 only
    const at::Tensor& d;
    const std::optional<at::Tensor>* c;
    const at::Tensor* grouping;  // m_indices (contiguous) or masked_m (masked)
    int expected_m;
    bool sfb_per_column = false;  // FP8 recipe (1, 1, 128): b[1] per (column, K-block), dense, fp32 d
    bool mn_major_a = false, mn_major_b = false;  // BF16 dense: the view read MN-major (mn_major_operand)
};

// DG_CHECK_GROUPING=1: every grouped call checks m_indices / masked_m before the GEMM
// (read per call, so a debugging session can switch it on and off).
bool grouping_check_requested() {
    const char* value = std::getenv("DG_CHECK_GROUPING");
    return value != nullptr && std::string_view(value) == "1";
}

bool capturing_cuda_graph() {
    return c10::cuda::currentStreamCaptureStatusMayInitCtx() != c10::cuda::CaptureStatus::None;
}

// GPU-resident indices (masked_m [G] or m_indices [M], valid in every other respect):
// one check kernel and one host sync, raising for the first offending position.
void check_grouping_values(const char* op, GemmType type, const at::Tensor& grouping, int64_t m, int64_t groups) {
    const bool masked = type == GemmType::GroupedMasked;
    const kernels::GroupingReport report =
        kernels::check_grouping(type, grouping, static_cast<int>(masked ? m : groups));
    if (report.violation == GroupingViolation::None) return;
    const int row = report.position, value = report.value;
    if (masked) {
        TORCH_CHECK_VALUE(value >= 0, op, ": masked_m[", row, "] = ", value,
                          " is negative (values must lie in [0, M = ", m, "])");
        TORCH_CHECK_VALUE(false, op, ": masked_m[", row, "] = ", value, " exceeds M = ", m,
                          " (values must lie in [0, M])");
    }
    TORCH_CHECK_VALUE(report.violation != GroupingViolation::OutOfRange, op, ": m_indices[", row, "] = ", value,
                      ", but values must be -1 (padding) or an expert index in [0, ", groups, ")");
    const int block_start = row - row % kContiguousAlignment;
    std::ostringstream why;
    if (report.violation == GroupingViolation::OtherExpert) {
        why << " but row " << block_start << " starts its " << kContiguousAlignment << "-row block with expert "
            << report.block_expert;
    } else if (report.violation == GroupingViolation::ExpertInPaddingBlock) {
        why << " but row " << block_start << " starts its " << kContiguousAlignment << "-row block with padding (-1)";
    } else {
        why << " follows padding (m_indices[" << row - 1 << "] = -1) in the " << kContiguousAlignment
            << "-row block from row " << block_start;
    }
    TORCH_CHECK_VALUE(false, op, ": m_indices[", row, "] = ", value, why.str(), "; each block of ",
                      kContiguousAlignment, " rows must hold one expert's rows, padding (-1) only after them: ",
                      "expert segments start at multiples of get_mk_alignment_for_contiguous_layout()");
}

void gemm(const Call& call) {
    const char* op = call.op;
    const bool fp8 = call.input == InputType::FP8;
    const bool masked = call.type == GemmType::GroupedMasked;
    const bool grouped = call.type != GemmType::Dense;
    const char* a_name = fp8 ? "a[0]" : "a";
    const char* b_name = fp8 ? "b[0]" : "b";
    const char* grouping_name = masked ? "masked_m" : "m_indices";
    const at::ScalarType in_dtype = fp8 ? at::kFloat8_e4m3fn : at::kBFloat16;
    const bool has_c = call.c != nullptr && call.c->has_value();

    // Types and ranks.
    check_tensor(op, a_name, call.a, {in_dtype}, masked ? 3 : 2);
    check_tensor(op, b_name, call.b, {in_dtype}, grouped ? 3 : 2);
    if (fp8) {
        check_tensor(op, "a[1]", *call.sfa, {at::kFloat}, masked ? 3 : 2);
        check_tensor(op, "b[1]", *call.sfb, {at::kFloat}, grouped ? 3 : 2);
    }
    check_tensor(op, "d", call.d, {at::kBFloat16, at::kFloat}, masked ? 3 : 2);
    if (call.sfb_per_column)
        TORCH_CHECK_TYPE(call.d.scalar_type() == at::kFloat, op, ": recipe (1, 1, 128) writes an FP32 d, got ",
                         call.d.scalar_type());
    if (has_c) {
        // FP8: C is fp32 (with an fp32 D); BF16: C has D's dtype, as upstream's.
        check_tensor(op, "c", **call.c, {fp8 ? at::kFloat : call.d.scalar_type()}, 2);
        TORCH_CHECK_TYPE(!fp8 || call.d.scalar_type() == at::kFloat, op,
                         ": accumulating into c needs d to be torch.float32, got ", call.d.scalar_type());
    }
    if (grouped) check_tensor(op, grouping_name, *call.grouping, {at::kInt}, 1);

    // Shapes.
    const int64_t groups = grouped ? call.b.size(0) : 1;
    const int64_t m = call.a.size(masked ? 1 : 0), k = call.a.size(-1), n = call.b.size(grouped ? 1 : 0);
    TORCH_CHECK_VALUE(call.b.size(-1) == k, op, ": ", a_name, " has shape ", shape_of(call.a), " and ", b_name,
                      " has shape ", shape_of(call.b), ": K differs");
    // A partial last K-block is zero-filled by TMA; rows must only be 16-byte aligned.
    const int64_t k_unit = kTmaAlignment / (fp8 ? 1 : 2);  // elements
    TORCH_CHECK_VALUE(k > 0 && k % k_unit == 0, op, ": K must be a positive multiple of ", k_unit,
                      " (rows of A and B 16-byte aligned for TMA), got K = ", k);
    if (masked) {
        TORCH_CHECK_VALUE(call.a.size(0) == groups, op, ": a has ", call.a.size(0), " groups but b has ", groups);
        checks::shape(op, "d", call.d, {groups, m, n}, "[G, M, N]");
        checks::shape(op, grouping_name, *call.grouping, {groups}, "[G]");
        TORCH_CHECK_VALUE(call.expected_m > 0, op, ": expected_m must be positive, got ", call.expected_m);
    } else {
        checks::shape(op, "d", call.d, {m, n}, "[M, N]");
    }
    if (call.type == GemmType::GroupedContiguous) {
        TORCH_CHECK_VALUE(m % kContiguousAlignment == 0, op, ": the contiguous layout needs M (", m,
                          ") to be a multiple of get_mk_alignment_for_contiguous_layout() = ", kContiguousAlignment);
        checks::shape(op, grouping_name, *call.grouping, {m}, "[M]");
    }
    if (has_c) checks::shape(op, "c", **call.c, {m, n}, "[M, N]");

    // Layouts.
    if (!call.mn_major_a) checks::contiguous(op, a_name, call.a);
    if (!call.mn_major_b) checks::contiguous(op, b_name, call.b);
    checks::contiguous(op, "d", call.d);
    if (has_c) checks::contiguous(op, "c", **call.c);
    if (grouped) checks::contiguous(op, grouping_name, *call.grouping);
    const int64_t k_blocks = ceil_div(k, int64_t{kScaleBlock});
    if (fp8) {
        check_mn_major_scales(op, "a[1]", *call.sfa, masked ? groups : 0, m, k_blocks);
        if (call.sfb_per_column) {
            check_mn_major_scales(op, "b[1]", *call.sfb, 0, n, k_blocks);
        } else if (grouped) {
            checks::shape(op, "b[1]", *call.sfb, {groups, ceil_div(n, int64_t{kScaleBlock}), k_blocks},
                        "[G, ceil(N / 128), ceil(K / 128)]");
        } else {
            checks::shape(op, "b[1]", *call.sfb, {ceil_div(n, int64_t{kScaleBlock}), k_blocks}, "[ceil(N / 128), ceil(K / 128)]");
        }
        if (!call.sfb_per_column) checks::contiguous(op, "b[1]", *call.sfb);
    }

    // Devices last, so that shape and layout errors are reported (and testable) on CPU tensors too.
    std::vector<std::pair<const char*, const at::Tensor*>> tensors = {{a_name, &call.a}, {b_name, &call.b}, {"d", &call.d}};
    if (fp8) tensors.insert(tensors.end(), {{"a[1]", call.sfa}, {"b[1]", call.sfb}});
    if (has_c) tensors.emplace_back("c", &**call.c);
    if (grouped) tensors.emplace_back(grouping_name, call.grouping);
    for (const auto& [name, t] : tensors) {
        TORCH_CHECK_VALUE(t->is_cuda(), op, ": ", name, " must be a CUDA tensor, got one on ", t->device());
        TORCH_CHECK_VALUE(t->device() == call.d.device(), op, ": ", name, " is on ", t->device(), " but d is on ",
                          call.d.device(), "; all tensors must be on one device");
        checks::aligned16(op, name, *t);
    }
    require_sm90(call.d, op);

    // GPU-resident indices: the kernel clamps them, so a bad value can only give wrong
    // rows, never an out-of-bounds access. Checking them costs a host sync, so it is
    // opt-in, for debugging (and skipped under CUDA-graph capture, which forbids it).
    if (grouped && call.grouping->numel() > 0 && grouping_check_requested() && !capturing_cuda_graph())
        check_grouping_values(op, call.type, *call.grouping, m, groups);

    if (m == 0 || n == 0) return;
    kernels::GemmProblem problem{call.input,
                                 call.type,
                                 call.a,
                                 fp8 ? *call.sfa : at::Tensor(),
                                 call.b,
                                 fp8 ? *call.sfb : at::Tensor(),
                                 call.d,
                                 has_c ? *call.c : std::nullopt,
                                 grouped ? *call.grouping : at::Tensor(),
                                 static_cast<int>(m),
                                 static_cast<int>(n),
                                 static_cast<int>(k),
                                 static_cast<int>(groups),
                                 call.expected_m,
                                 call.sfb_per_column,
                                 call.mn_major_a,
                                 call.mn_major_b};
    kernels::launch_gemm(problem, get_num_sms());
}

// An operand of a BF16 dense GEMM as the kernel reads it. An MN-major view (stride 1
// along M or N: upstream's nn / tn / tt layouts) is read in place where its [K, MN] rows
// are 16-byte aligned and D [M, n] goes through the TMA store (the MN-major kernels have
// no other epilogue); elsewhere it is copied K-major, one pass over it. Other layouts
// pass through as K-major and fail the contiguity check.
struct Operand {
    at::Tensor tensor;
    bool mn_major;
};
Operand bf16_operand(const at::Tensor& t, const at::Tensor& d) {
    const bool mn_major = t.defined() && t.dim() == 2 && !t.is_contiguous() && t.stride(0) == 1;
    if (!mn_major) return {t, false};
    const bool rows_aligned = t.stride(1) % (kTmaAlignment / 2) == 0 && t.stride(1) >= t.size(0);
    const bool tma_d = d.dim() == 2 && (d.scalar_type() == at::kBFloat16 || d.scalar_type() == at::kFloat) &&
                       kernels::stores_with_tma(GemmType::Dense, static_cast<int>(d.size(1)),
                                                d.scalar_type() == at::kFloat ? kernels::OutputType::FP32
                                                                              : kernels::OutputType::BF16);
    if (rows_aligned && tma_d) return {t, true};
    return {t.contiguous(), false};
}

}  // namespace

int get_mk_alignment_for_contiguous_layout() { return kContiguousAlignment; }

void fp8_gemm_nt(const ScaledTensor& a, const ScaledTensor& b, const at::Tensor& d,
                 const std::optional<at::Tensor>& c) {
    gemm({"fp8_gemm_nt", InputType::FP8, GemmType::Dense, a.first, &a.second, b.first, &b.second, d, &c, nullptr, 0});
}

void fp8_gemm_nt_1d1d(const ScaledTensor& a, const ScaledTensor& b, const at::Tensor& d,
                      const std::optional<at::Tensor>& c) {
    gemm({"fp8_gemm_nt", InputType::FP8, GemmType::Dense, a.first, &a.second, b.first, &b.second, d, &c, nullptr, 0,
          true});
}

void bf16_gemm_nt(const at::Tensor& a, const at::Tensor& b, const at::Tensor& d, const std::optional<at::Tensor>& c) {
    const Operand a_in = bf16_operand(a, d), b_in = bf16_operand(b, d);
    gemm({"bf16_gemm_nt", InputType::BF16, GemmType::Dense, a_in.tensor, nullptr, b_in.tensor, nullptr, d, &c, nullptr,
          0, false, a_in.mn_major, b_in.mn_major});
}

namespace {

// The K-grouped GEMMs (weight gradients of MoE experts): d[g] = c[g] + A_g @ B_g^T, each
// group a dense GEMM over its own K-range of the concatenated operands, launched one
// after another on the stream (the group sizes are on the host). Everything is checked
// before the first launch: `operands_hold(total K)` says whether a and b are long enough;
// `group(first, k, d[g], c[g])` runs a group; empty groups get d[g] = c[g] (or zeros).
void k_grouped(const char* op, const at::Tensor& d, const std::vector<uint64_t>& ks, const at::Tensor& ks_tensor,
               const std::optional<at::Tensor>& c, int64_t k_unit, const std::function<bool(int64_t)>& operands_hold,
               const std::function<void(int64_t, int64_t, const at::Tensor&, const std::optional<at::Tensor>&)>& group) {
    check_tensor(op, "d", d, {at::kFloat}, 3);
    const int64_t groups = d.size(0);
    TORCH_CHECK_VALUE(static_cast<int64_t>(ks.size()) == groups, op, ": ks_cpu has ", ks.size(),
                      " group sizes but d has ", groups, " groups");
    check_tensor(op, "grouped_layout", ks_tensor, {at::kInt}, 1);
    checks::shape(op, "grouped_layout", ks_tensor, {groups}, "[G]");
    if (c.has_value()) {
        check_tensor(op, "c", *c, {at::kFloat}, 3);
        checks::shape(op, "c", *c, {groups, d.size(1), d.size(2)}, "[G, M, N]");
    }
    int64_t total = 0;
    for (int64_t g = 0; g < groups; ++g) {
        const int64_t k = static_cast<int64_t>(ks[g]);
        TORCH_CHECK_VALUE(k % k_unit == 0, op, ": ks_cpu[", g, "] = ", k, " is not a multiple of ", k_unit);
        total += k;
    }
    TORCH_CHECK_VALUE(operands_hold(total), op, ": a and b hold fewer than sum(ks_cpu) = ", total,
                      " K-rows of M and N elements");
    int64_t first = 0;  // K-offset of the group in the concatenated operands
    for (int64_t g = 0; g < groups; ++g) {
        const int64_t k = static_cast<int64_t>(ks[g]);
        const std::optional<at::Tensor> c_g = c.has_value() ? std::optional<at::Tensor>(c->select(0, g)) : std::nullopt;
        if (k > 0) {
            group(first, k, d.select(0, g), c_g);
        } else if (!c_g.has_value()) {
            d.select(0, g).zero_();
        } else if (!c_g->is_same(d.select(0, g))) {
            d.select(0, g).copy_(*c_g);
        }
        first += k;
    }
}

}  // namespace

void k_grouped_fp8_gemm_nt_contiguous(const ScaledTensor& a, const ScaledTensor& b, const at::Tensor& d,
                                const std::vector<uint64_t>& ks, const at::Tensor& ks_tensor,
                                const std::optional<at::Tensor>& c) {
    const char* op = "k_grouped_fp8_gemm_nt_contiguous";
    check_tensor(op, "a[0]", a.first, {at::kFloat8_e4m3fn}, 1);
    check_tensor(op, "b[0]", b.first, {at::kFloat8_e4m3fn}, 1);
    check_tensor(op, "a[1]", a.second, {at::kFloat}, 2);
    check_tensor(op, "b[1]", b.second, {at::kFloat}, 2);
    const int64_t m = d.dim() == 3 ? d.size(1) : 0, n = d.dim() == 3 ? d.size(2) : 0;
    k_grouped(
        op, d, ks, ks_tensor, c, kScaleBlock,
        [&](int64_t total) {
            return total * m <= a.first.numel() && total * n <= b.first.numel() &&
             total / kScaleBlock <= a.second.size(1) && total / kScaleBlock <= b.second.size(1);
        },
        [&](int64_t first, int64_t k, const at::Tensor& d_g, const std::optional<at::Tensor>& c_g) {
            // Group g: A_g [M, k] and B_g [N, k] K-major, stored one after another; their
            // scales the K-blocks [first / 128, (first + k) / 128) of the MN-major ones.
            const at::Tensor a_g = a.first.narrow(0, first * m, k * m).view({m, k});
            const at::Tensor b_g = b.first.narrow(0, first * n, k * n).view({n, k});
            const at::Tensor sfa_g = a.second.narrow(1, first / kScaleBlock, k / kScaleBlock);
            const at::Tensor sfb_g = b.second.narrow(1, first / kScaleBlock, k / kScaleBlock);
            gemm({op, InputType::FP8, GemmType::Dense, a_g, &sfa_g, b_g, &sfb_g, d_g, &c_g, nullptr, 0, true});
        });
}

void k_grouped_bf16_gemm_tn_contiguous(const at::Tensor& a, const at::Tensor& b, const at::Tensor& d,
                                 const std::vector<uint64_t>& ks, const at::Tensor& ks_tensor,
                                 const std::optional<at::Tensor>& c) {
    const char* op = "k_grouped_bf16_gemm_tn_contiguous";
    check_tensor(op, "a", a, {at::kBFloat16}, 2);
    check_tensor(op, "b", b, {at::kBFloat16}, 2);
    k_grouped(
        op, d, ks, ks_tensor, c, get_mk_alignment_for_contiguous_layout(),
        [&](int64_t total) { return total <= a.size(0) && total <= b.size(0); },
        [&](int64_t first, int64_t k, const at::Tensor& d_g, const std::optional<at::Tensor>& c_g) {
            // Group g: rows [first, first + k) of a [sum k, M] and b [sum k, N], i.e. the
            // MN-major A_g^T and B_g^T.
            const Operand a_g = bf16_operand(a.narrow(0, first, k).t(), d_g);
            const Operand b_g = bf16_operand(b.narrow(0, first, k).t(), d_g);
            gemm({op, InputType::BF16, GemmType::Dense, a_g.tensor, nullptr, b_g.tensor, nullptr, d_g, &c_g, nullptr, 0,
                  false, a_g.mn_major, b_g.mn_major});
        });
}

void m_grouped_fp8_gemm_nt_contiguous(const ScaledTensor& a, const ScaledTensor& b, const at::Tensor& d,
                                      const at::Tensor& m_indices) {
    gemm({"m_grouped_fp8_gemm_nt_contiguous", InputType::FP8, GemmType::GroupedContiguous, a.first, &a.second,
          b.first, &b.second, d, nullptr, &m_indices, 0});
}

void m_grouped_bf16_gemm_nt_contiguous(const at::Tensor& a, const at::Tensor& b, const at::Tensor& d,
                                       const at::Tensor& m_indices) {
    gemm({"m_grouped_bf16_gemm_nt_contiguous", InputType::BF16, GemmType::GroupedContiguous, a, nullptr, b, nullptr, d,
          nullptr, &m_indices, 0});
}

void m_grouped_fp8_gemm_nt_masked(const ScaledTensor& a, const ScaledTensor& b, const at::Tensor& d,
                                  const at::Tensor& masked_m, int expected_m) {
    gemm({"m_grouped_fp8_gemm_nt_masked", InputType::FP8, GemmType::GroupedMasked, a.first, &a.second, b.first,
          &b.second, d, nullptr, &masked_m, expected_m});
}

void m_grouped_bf16_gemm_nt_masked(const at::Tensor& a, const at::Tensor& b, const at::Tensor& d,
                                   const at::Tensor& masked_m, int expected_m) {
    gemm({"m_grouped_bf16_gemm_nt_masked", InputType::BF16, GemmType::GroupedMasked, a, nullptr, b, nullptr, d,
          nullptr, &masked_m, expected_m});
}

void reload_gemm_plan_overrides() { kernels::reload_plan_overrides(); }

std::string gemm_config_name(const std::string& input, const std::string& type, int m, int n, int k, int num_groups,
                             int expected_m, const std::string& output, int num_sms) {
    const char* op = "gemm_config";
    TORCH_CHECK_VALUE(input == "fp8" || input == "bf16", op, ": input must be 'fp8' or 'bf16', got '", input, "'");
    TORCH_CHECK_VALUE(type == "dense" || type == "contiguous" || type == "masked" || type == "columns", op,
                      ": type must be 'dense', 'contiguous', 'masked' or 'columns' (fp8_einsum's heads), got '", type,
                      "'");
    TORCH_CHECK_VALUE(type != "columns" || input == "fp8", op, ": type 'columns' is FP8 only");
    TORCH_CHECK_VALUE(output == "bf16" || output == "fp32", op, ": output must be 'bf16' or 'fp32', got '", output,
                      "'");
    TORCH_CHECK_VALUE(m > 0 && n > 0 && k > 0 && num_groups > 0 && num_sms > 0, op,
                      ": m, n, k, num_groups and num_sms must be positive, got ", m, ", ", n, ", ", k, ", ", num_groups,
                      ", ", num_sms);
    const GemmType gemm_type = type == "dense"        ? GemmType::Dense
                               : type == "contiguous" ? GemmType::GroupedContiguous
                               : type == "masked"     ? GemmType::GroupedMasked
                                                      : GemmType::GroupedColumns;
    const kernels::GemmShape shape{input == "fp8" ? InputType::FP8 : InputType::BF16, gemm_type, m, n, k, num_groups,
                                   expected_m,
                                   output == "bf16" ? kernels::OutputType::BF16 : kernels::OutputType::FP32};
    return kernels::plan_gemm(shape, num_sms).describe();
}

std::vector<std::pair<std::string, std::string>> kernel_sources() {
    std::vector<jit::KernelSource> all;
    for (const kernels::GemmConfig& config : kernels::all_gemm_configs()) all.push_back(config.source());
    for (GemmType type : {GemmType::GroupedContiguous, GemmType::GroupedMasked})
        all.push_back(kernels::grouping_check_source(type));
    for (auto family : {kernels::attention_kernel_sources, kernels::hyperconnection_kernel_sources,
                        kernels::einsum_kernel_sources, kernels::layout_kernel_sources})
        for (jit::KernelSource& source : family()) all.push_back(std::move(source));
    std::vector<std::pair<std::string, std::string>> sources;
    for (jit::KernelSource& source : all) sources.emplace_back(std::move(source.name), std::move(source.source));
    return sources;
}

}  // namespace deep_gemm::api
