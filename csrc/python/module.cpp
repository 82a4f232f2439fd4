// deep_gemm._C: the Python names of libdeep_gemm_runtime (csrc/jit, csrc/apis).
//
// The only part of deep_gemm built once per CPython and shipped once per CPython in
// the fat wheel, so it is written on CPython's C API rather than pybind11: pybind11's
// per-module machinery (dispatcher, internals, type registry) alone is ~47 KB
// compressed and ~4 s of compile per CPython; this whole file is ~16 KB and ~3 s.
// Arguments convert by the rules the pybind11 binding had (see the load() functions),
// and errors keep their types: only a TypeError's wording for a wrong argument type
// differs. Validation is the runtime's (csrc/apis); nothing here but conversions.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <c10/util/Exception.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "../apis/device.hpp"
#include "../apis/gemm.hpp"
#include "../apis/attention.hpp"
#include "../apis/hyperconnection.hpp"
#include "../apis/einsum.hpp"
#include "../apis/layout.hpp"
#include "../jit/runtime.hpp"
#include "tensor_caster.hpp"

namespace api = deep_gemm::api;
namespace jit = deep_gemm::jit;

namespace {

// ---- Python <-> C++ helpers -------------------------------------------------------

// An owned reference, released on every path (the runtime throws).
struct Ref {
    PyObject* ptr;
    explicit Ref(PyObject* p) : ptr(p) {}
    Ref(const Ref&) = delete;
    Ref& operator=(const Ref&) = delete;
    ~Ref() { Py_XDECREF(ptr); }
};

// Py_BEGIN/END_ALLOW_THREADS that also re-attaches when the runtime throws.
class GilRelease {
public:
    GilRelease() : state_(PyEval_SaveThread()) {}
    GilRelease(const GilRelease&) = delete;
    GilRelease& operator=(const GilRelease&) = delete;
    ~GilRelease() { PyEval_RestoreThread(state_); }

private:
    PyThreadState* state_;
};

// The exception in flight as a Python error; returns nullptr. c10 errors become
// TypeError / ValueError / RuntimeError with the message only (no C++ backtrace);
// the rest map as pybind11 mapped them.
PyObject* raise_current_exception() noexcept {
    try {
        throw;
    } catch (const c10::TypeError& e) {
        PyErr_SetString(PyExc_TypeError, e.what_without_backtrace());
    } catch (const c10::ValueError& e) {
        PyErr_SetString(PyExc_ValueError, e.what_without_backtrace());
    } catch (const c10::Error& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what_without_backtrace());
    } catch (const std::bad_alloc& e) {
        PyErr_SetString(PyExc_MemoryError, e.what());
    } catch (const std::out_of_range& e) {
        PyErr_SetString(PyExc_IndexError, e.what());
    } catch (const std::overflow_error& e) {
        PyErr_SetString(PyExc_OverflowError, e.what());
    } catch (const std::invalid_argument& e) {
        PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const std::domain_error& e) {
        PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const std::length_error& e) {
        PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const std::range_error& e) {
        PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
    } catch (...) {
        PyErr_SetString(PyExc_RuntimeError, "Caught an unknown exception!");
    }
    return nullptr;
}

// Runs `body` (which returns a new reference, or nullptr with a Python error set),
// turning C++ exceptions into Python errors.
template <typename Body>
PyObject* guarded(Body&& body) noexcept {
    try {
        return body();
    } catch (...) {
        return raise_current_exception();
    }
}

// Each load() returns false when `o` does not convert, with a Python error set only
// if one should propagate as it is.

// str (UTF-8), bytes or bytearray.
bool load(PyObject* o, std::string& out) {
    if (PyUnicode_Check(o)) {
        Py_ssize_t size = 0;
        const char* data = PyUnicode_AsUTF8AndSize(o, &size);
        if (data == nullptr) {
            PyErr_Clear();  // e.g. a lone surrogate: not a convertible str
            return false;
        }
        out.assign(data, static_cast<size_t>(size));
        return true;
    }
    if (PyBytes_Check(o)) {
        out.assign(PyBytes_AS_STRING(o), static_cast<size_t>(PyBytes_GET_SIZE(o)));
        return true;
    }
    if (PyByteArray_Check(o)) {
        out.assign(PyByteArray_AS_STRING(o), static_cast<size_t>(PyByteArray_GET_SIZE(o)));
        return true;
    }
    return false;
}

// An int or an object with __index__ (or __int__), never a float, in T's range.
template <typename T, std::enable_if_t<std::is_integral_v<T>, int> = 0>
bool load(PyObject* o, T& out) {
    if (PyFloat_Check(o)) return false;
    PyObject* number = PyNumber_Index(o);
    if (number == nullptr && PyNumber_Check(o)) {
        PyErr_Clear();
        number = PyNumber_Long(o);
    }
    if (number == nullptr) {
        PyErr_Clear();
        return false;
    }
    const Ref owned(number);
    bool ok;
    if constexpr (std::is_signed_v<T>) {
        const long long value = PyLong_AsLongLong(number);
        ok = !PyErr_Occurred() && value >= std::numeric_limits<T>::min() && value <= std::numeric_limits<T>::max();
        out = static_cast<T>(value);
    } else {
        const unsigned long long value = PyLong_AsUnsignedLongLong(number);
        ok = !PyErr_Occurred() && value <= std::numeric_limits<T>::max();
        out = static_cast<T>(value);
    }
    PyErr_Clear();  // out of range: not convertible
    return ok;
}

// A torch.Tensor (or subclass), through torch's own caster (tensor_caster.hpp).
bool load(PyObject* o, at::Tensor& out) {
    pybind11::detail::type_caster<at::Tensor> caster;
    if (!caster.load(pybind11::handle(o), true)) return false;
    out = std::move(static_cast<at::Tensor&>(caster));
    return true;
}

// A sequence (not only a tuple) of exactly N items, each loaded by `item(i, obj)`.
// Read through a tuple copy: another thread may resize a list meanwhile.
template <size_t N, typename Item>
bool load_sequence(PyObject* o, Item&& item) {
    if (!PySequence_Check(o)) return false;
    const Ref items(PySequence_Tuple(o));
    if (items.ptr == nullptr) {
        PyErr_Clear();
        return false;
    }
    if (PyTuple_GET_SIZE(items.ptr) != static_cast<Py_ssize_t>(N)) return false;
    for (size_t i = 0; i < N; ++i)
        if (!item(i, PyTuple_GET_ITEM(items.ptr, i))) return false;
    return true;
}

bool load(PyObject* o, api::ScaledTensor& out) {
    return load_sequence<2>(o, [&](size_t i, PyObject* item) { return load(item, i == 0 ? out.first : out.second); });
}

bool load(PyObject* o, dim3& out) {
    unsigned* fields[] = {&out.x, &out.y, &out.z};
    return load_sequence<3>(o, [&](size_t i, PyObject* item) { return load(item, *fields[i]); });
}

// Any iterable but str / bytes.
bool load(PyObject* o, std::vector<uint64_t>& out) {
    if (PyUnicode_Check(o) || PyBytes_Check(o)) return false;
    const Ref items(PySequence_Tuple(o));
    if (items.ptr == nullptr) {
        PyErr_Clear();
        return false;
    }
    out.resize(static_cast<size_t>(PyTuple_GET_SIZE(items.ptr)));
    for (size_t i = 0; i < out.size(); ++i)
        if (!load(PyTuple_GET_ITEM(items.ptr, i), out[i])) return false;
    return true;
}

bool load(PyObject* o, std::optional<at::Tensor>& out) {
    if (o == Py_None) {
        out.reset();
        return true;
    }
    return load(o, out.emplace());
}

// How a TypeError names what an argument should have been.
template <typename T>
constexpr const char* expected() {
    if constexpr (std::is_same_v<T, at::Tensor>) return "a torch.Tensor";
    else if constexpr (std::is_same_v<T, std::optional<at::Tensor>>) return "a torch.Tensor or None";
    else if constexpr (std::is_same_v<T, api::ScaledTensor>) return "a (torch.Tensor, torch.Tensor) pair";
    else if constexpr (std::is_same_v<T, std::string>) return "a str";
    else if constexpr (std::is_same_v<T, dim3>) return "a sequence of 3 ints in [0, 2**32)";
    else if constexpr (std::is_same_v<T, std::vector<uint64_t>>) return "a sequence of ints in [0, 2**64)";
    else if constexpr (std::is_signed_v<T>)
        return sizeof(T) == 4 ? "an int in [-2**31, 2**31)" : "an int in [-2**63, 2**63)";
    else return sizeof(T) == 4 ? "an int in [0, 2**32)" : "an int in [0, 2**64)";
}

// load(), or a TypeError naming the function, the argument and the expected type.
template <typename T>
bool convert(const char* function, const char* argument, PyObject* o, T& out) {
    if (load(o, out)) return true;
    if (!PyErr_Occurred())
        PyErr_Format(PyExc_TypeError, "%s(): argument '%s' must be %s, not %s", function, argument, expected<T>(),
                     Py_TYPE(o)->tp_name);
    return false;
}

// Parses positional and keyword arguments named `names` (the first `required` of them
// required) into `out...`; an omitted optional argument keeps its value in `out`.
template <typename... T, size_t... I>
bool parse(const char* function, PyObject* args, PyObject* kwargs, const char* const* names, size_t required,
           std::index_sequence<I...>, T&... out) {
    std::string format(required, 'O');
    if (sizeof...(T) > required) format += '|' + std::string(sizeof...(T) - required, 'O');
    format += ':';
    format += function;
    PyObject* objects[sizeof...(T) + 1] = {};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, format.c_str(), const_cast<char**>(names), &objects[I]...))
        return false;
    return ((objects[I] == nullptr || convert(function, names[I], objects[I], out)) && ...);
}

template <typename... T>
bool parse(const char* function, PyObject* args, PyObject* kwargs, const char* const* names, size_t required,
           T&... out) {
    return parse(function, args, kwargs, names, required, std::index_sequence_for<T...>{}, out...);
}

// A GEMM entry point of csrc/apis, `void fn(P...)`: arguments are converted with the
// GIL held, fn runs without it (as pybind11's call_guard<gil_scoped_release> did).
template <typename... P>
PyObject* call_gemm(void (*fn)(P...), const char* function, const char* const* names, size_t required,
                    PyObject* args, PyObject* kwargs) {
    return guarded([&]() -> PyObject* {
        std::tuple<std::decay_t<P>...> values;
        const bool parsed = std::apply(
            [&](auto&... value) { return parse(function, args, kwargs, names, required, value...); }, values);
        if (!parsed) return nullptr;
        {
            GilRelease nogil;
            std::apply(fn, values);
        }
        Py_RETURN_NONE;
    });
}

PyObject* new_str(const std::string& s) {
    return PyUnicode_FromStringAndSize(s.data(), static_cast<Py_ssize_t>(s.size()));
}

// ---- the module's functions -------------------------------------------------------

const char* const kDenseNames[] = {"a", "b", "d", "c", nullptr};
const char* const kContiguousNames[] = {"a", "b", "d", "m_indices", nullptr};
const char* const kMaskedNames[] = {"a", "b", "d", "masked_m", "expected_m", nullptr};

PyObject* fp8_gemm_nt(PyObject*, PyObject* args, PyObject* kwargs) {
    return call_gemm(api::fp8_gemm_nt, "fp8_gemm_nt", kDenseNames, 3, args, kwargs);
}

PyObject* fp8_gemm_nt_1d1d(PyObject*, PyObject* args, PyObject* kwargs) {
    return call_gemm(api::fp8_gemm_nt_1d1d, "fp8_gemm_nt_1d1d", kDenseNames, 3, args, kwargs);
}

const char* const kKGroupedNames[] = {"a", "b", "d", "ks", "ks_tensor", "c", nullptr};

PyObject* k_grouped_fp8_gemm_nt_contiguous(PyObject*, PyObject* args, PyObject* kwargs) {
    return call_gemm(api::k_grouped_fp8_gemm_nt_contiguous, "k_grouped_fp8_gemm_nt_contiguous", kKGroupedNames, 5,
                     args, kwargs);
}

PyObject* k_grouped_bf16_gemm_tn_contiguous(PyObject*, PyObject* args, PyObject* kwargs) {
    return call_gemm(api::k_grouped_bf16_gemm_tn_contiguous, "k_grouped_bf16_gemm_tn_contiguous", kKGroupedNames, 5,
                     args, kwargs);
}

PyObject* bf16_gemm_nt(PyObject*, PyObject* args, PyObject* kwargs) {
    return call_gemm(api::bf16_gemm_nt, "bf16_gemm_nt", kDenseNames, 3, args, kwargs);
}

PyObject* m_grouped_fp8_gemm_nt_contiguous(PyObject*, PyObject* args, PyObject* kwargs) {
    return call_gemm(api::m_grouped_fp8_gemm_nt_contiguous, "m_grouped_fp8_gemm_nt_contiguous", kContiguousNames, 4,
                     args, kwargs);
}

PyObject* m_grouped_bf16_gemm_nt_contiguous(PyObject*, PyObject* args, PyObject* kwargs) {
    return call_gemm(api::m_grouped_bf16_gemm_nt_contiguous, "m_grouped_bf16_gemm_nt_contiguous", kContiguousNames,
                     4, args, kwargs);
}

PyObject* m_grouped_fp8_gemm_nt_masked(PyObject*, PyObject* args, PyObject* kwargs) {
    return call_gemm(api::m_grouped_fp8_gemm_nt_masked, "m_grouped_fp8_gemm_nt_masked", kMaskedNames, 5, args,
                     kwargs);
}

PyObject* m_grouped_bf16_gemm_nt_masked(PyObject*, PyObject* args, PyObject* kwargs) {
    return call_gemm(api::m_grouped_bf16_gemm_nt_masked, "m_grouped_bf16_gemm_nt_masked", kMaskedNames, 5, args,
                     kwargs);
}

PyObject* get_mk_alignment_for_contiguous_layout(PyObject*, PyObject*) {
    return guarded([] { return PyLong_FromLong(api::get_mk_alignment_for_contiguous_layout()); });
}

PyObject* get_num_sms(PyObject*, PyObject*) {
    return guarded([] { return PyLong_FromLong(api::get_num_sms()); });
}

PyObject* reload_gemm_plan_overrides(PyObject*, PyObject*) {
    return guarded([]() -> PyObject* {
        api::reload_gemm_plan_overrides();
        Py_RETURN_NONE;
    });
}

PyObject* set_num_sms(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* const names[] = {"num_sms", nullptr};
    return guarded([&]() -> PyObject* {
        int num_sms = 0;
        if (!parse("set_num_sms", args, kwargs, names, 1, num_sms)) return nullptr;
        api::set_num_sms(num_sms);
        Py_RETURN_NONE;
    });
}

PyObject* kernel_sources(PyObject*, PyObject*) {
    return guarded([]() -> PyObject* {
        const auto sources = api::kernel_sources();
        Ref list(PyList_New(static_cast<Py_ssize_t>(sources.size())));
        if (list.ptr == nullptr) return nullptr;
        for (size_t i = 0; i < sources.size(); ++i) {
            const auto& [name, source] = sources[i];
            PyObject* pair = Py_BuildValue("(s#s#)", name.data(), static_cast<Py_ssize_t>(name.size()), source.data(),
                                           static_cast<Py_ssize_t>(source.size()));
            if (pair == nullptr) return nullptr;
            PyList_SET_ITEM(list.ptr, static_cast<Py_ssize_t>(i), pair);  // steals `pair`
        }
        return std::exchange(list.ptr, nullptr);
    });
}

PyObject* gemm_config(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* const names[] = {"input", "type", "m", "n", "k", "num_groups", "expected_m", "output",
                                        "num_sms", nullptr};
    return guarded([&]() -> PyObject* {
        std::string input, type, output = "bf16";
        int m = 0, n = 0, k = 0, num_groups = 1, expected_m = 0, num_sms = 132;
        if (!parse("gemm_config", args, kwargs, names, 5, input, type, m, n, k, num_groups, expected_m, output,
                   num_sms))
            return nullptr;
        return new_str(api::gemm_config_name(input, type, m, n, k, num_groups, expected_m, output, num_sms));
    });
}

PyObject* init(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* const names[] = {"include_dir", "nvrtc_lib", "cuda_home", "cuda_include", "cache_dir", nullptr};
    return guarded([&]() -> PyObject* {
        jit::Paths paths;
        if (!parse("init", args, kwargs, names, 5, paths.include_dir, paths.nvrtc_lib, paths.cuda_home,
                   paths.cuda_include, paths.cache_dir))
            return nullptr;
        jit::init(paths);
        Py_RETURN_NONE;
    });
}

PyObject* jit_compile(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* const names[] = {"name", "source", "entry", "arch", nullptr};
    return guarded([&]() -> PyObject* {
        jit::KernelSource kernel;  // entry and arch default to deep_gemm_kernel / sm_90a
        if (!parse("jit_compile", args, kwargs, names, 2, kernel.name, kernel.source, kernel.entry, kernel.arch))
            return nullptr;
        std::shared_ptr<const jit::Cubin> cubin;
        {
            GilRelease nogil;
            cubin = jit::compile(kernel);
        }
        return Py_BuildValue("{s:s#,s:O,s:n}", "compiler", cubin->compiler.data(),
                             static_cast<Py_ssize_t>(cubin->compiler.size()), "from_cache",
                             cubin->from_cache ? Py_True : Py_False, "size",
                             static_cast<Py_ssize_t>(cubin->bytes.size()));
    });
}

PyObject* jit_launch(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* const names[] = {"name", "source", "grid", "block", "shared_bytes", "cluster_x",
                                        "args", "stream", "entry", nullptr};
    return guarded([&]() -> PyObject* {
        jit::KernelSource kernel;
        jit::LaunchConfig config;  // shared_bytes 0, cluster_x 1
        std::vector<uint64_t> params;
        uintptr_t stream = 0;
        if (!parse("jit_launch", args, kwargs, names, 4, kernel.name, kernel.source, config.grid, config.block,
                   config.shared_bytes, config.cluster_x, params, stream, kernel.entry))
            return nullptr;
        config.stream = reinterpret_cast<cudaStream_t>(stream);
        {
            GilRelease nogil;
            const jit::Kernel& loaded = jit::get_kernel(kernel);
            std::vector<void*> pointers;  // cuLaunchKernelEx takes one pointer per parameter
            for (auto& param : params) pointers.push_back(&param);
            loaded.launch(config, pointers.data());
        }
        Py_RETURN_NONE;
    });
}

PyObject* jit_cache_dir(PyObject*, PyObject*) {
    return guarded([] { return new_str(jit::paths().cache_dir); });
}

// ---- the indexer, mHC and einsum (csrc/apis/attention.hpp, hyperconnection.hpp, einsum.hpp)
// Entry points that return a tensor; deep_gemm/attention.py holds their public
// signatures and passes every argument positionally.

template <typename... P>
PyObject* call_returning_tensor(at::Tensor (*fn)(P...), const char* function, const char* const* names,
                                PyObject* args, PyObject* kwargs) {
    return guarded([&]() -> PyObject* {
        std::tuple<std::decay_t<P>...> values;
        const bool parsed = std::apply(
            [&](auto&... value) { return parse(function, args, kwargs, names, sizeof...(P), value...); }, values);
        if (!parsed) return nullptr;
        at::Tensor result;
        {
            GilRelease nogil;
            result = std::apply(fn, values);
        }
        return pybind11::detail::type_caster<at::Tensor>::cast(result, pybind11::return_value_policy::move,
                                                               pybind11::handle())
            .ptr();
    });
}

PyObject* fp8_mqa_logits(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* const names[] = {"q", "q_scales", "kv", "weights", "cu_seq_len_k_start", "cu_seq_len_k_end",
                                        "clean_logits", "max_seqlen_k", "logits_dtype", nullptr};
    return call_returning_tensor(api::fp8_mqa_logits, "fp8_mqa_logits", names, args, kwargs);
}

PyObject* get_paged_mqa_logits_metadata(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* const names[] = {"context_lens", "block_kv", "num_sms", "indices", nullptr};
    return call_returning_tensor(api::get_paged_mqa_logits_metadata, "get_paged_mqa_logits_metadata", names, args,
                                 kwargs);
}

PyObject* tf32_hc_prenorm_gemm(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* const names[] = {"a", "b", "d", "sqr_sum", "num_splits", nullptr};
    return call_gemm(api::tf32_hc_prenorm_gemm, "tf32_hc_prenorm_gemm", names, 5, args, kwargs);
}

PyObject* einsum(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* const names[] = {"expr", "a", "b", "d", "c", "use_cublaslt", nullptr};
    return call_gemm(api::einsum, "einsum", names, 6, args, kwargs);
}

PyObject* fp8_einsum(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* const names[] = {"expr", "a", "b", "d", "c", "recipe_m", "recipe_n", "recipe_k", nullptr};
    return call_gemm(api::fp8_einsum, "fp8_einsum", names, 8, args, kwargs);
}

PyObject* fp8_paged_mqa_logits(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* const names[] = {"q", "q_scales", "kv_cache", "weights", "context_lens", "block_table",
                                        "schedule_meta", "max_context_len", "clean_logits", "logits_dtype",
                                        "indices", nullptr};
    return call_returning_tensor(api::fp8_paged_mqa_logits, "fp8_paged_mqa_logits", names, args, kwargs);
}

PyObject* k_grouped_packed_ue8m0(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* const names[] = {"sf", "ks", "gran_k", nullptr};
    return call_returning_tensor(api::k_grouped_packed_ue8m0, "k_grouped_packed_ue8m0", names, args, kwargs);
}

PyObject* mn_major_packed_ue8m0(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* const names[] = {"sf", nullptr};
    return call_returning_tensor(api::mn_major_packed_ue8m0, "mn_major_packed_ue8m0", names, args, kwargs);
}

// ---- the module -------------------------------------------------------------------

// The docstrings are the ones pybind11 generated for the previous binding, so that
// help() reads as before.
#define DG_FUNCTION(name, flags, doc) \
    {#name, reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(name)), flags, doc}
constexpr int kKeywords = METH_VARARGS | METH_KEYWORDS;
PyMethodDef methods[] = {
    DG_FUNCTION(fp8_gemm_nt, kKeywords,
                "fp8_gemm_nt(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor], d: "
                "torch.Tensor, c: torch.Tensor | None = None) -> None\n\n"
                "D = A @ B.T (+ C) for e4m3 A [M, K] and B [N, K] with DeepGEMM's 1x128 / 128x128 block scales.\n"
                "a and b are (data, scales) pairs; d is bf16 or fp32 [M, N]; c (fp32) needs an fp32 d.\n"),
    DG_FUNCTION(fp8_gemm_nt_1d1d, kKeywords,
                "fp8_gemm_nt_1d1d(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor], d: "
                "torch.Tensor, c: torch.Tensor | None = None) -> None\n\n"
                "fp8_gemm_nt with recipe (1, 1, 128): B's scales per (column, 128-K-block) like A's, both\n"
                "[MN, ceil(K/128)] MN-major TMA-aligned; d fp32 [M, N]; c (fp32, may be d) is added.\n"),
    DG_FUNCTION(k_grouped_fp8_gemm_nt_contiguous, kKeywords,
                "k_grouped_fp8_gemm_nt_contiguous(a, b, d, ks: list[int], ks_tensor, c=None) -> None\n\n"
                "d[g] = c[g] + A_g @ B_g.T over groups concatenated along K (recipe (1, 1, 128)): a = (e4m3 flat, each\n"
                "group's [M, ks[g]] K-major block in turn; fp32 MN-major scales [M, sum(ks)/128]), b likewise for N;\n"
                "ks_tensor = ks as int32 [G]; d, c fp32 [G, M, N].\n"),
    DG_FUNCTION(k_grouped_bf16_gemm_tn_contiguous, kKeywords,
                "k_grouped_bf16_gemm_tn_contiguous(a, b, d, ks: list[int], ks_tensor, c=None) -> None\n\n"
                "d[g] = c[g] + a[rows of g].T @ b[rows of g] for bf16 a [sum(ks), M], b [sum(ks), N]; d, c fp32 [G, M, N].\n"),
    DG_FUNCTION(bf16_gemm_nt, kKeywords,
                "bf16_gemm_nt(a: torch.Tensor, b: torch.Tensor, d: torch.Tensor, c: torch.Tensor | None = None) -> "
                "None\n\n"
                "D = A @ B.T (+ C) for bf16 A [M, K] and B [N, K]; d is bf16 or fp32 [M, N]; c (fp32) needs an fp32 "
                "d.\n"),
    DG_FUNCTION(m_grouped_fp8_gemm_nt_contiguous, kKeywords,
                "m_grouped_fp8_gemm_nt_contiguous(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, "
                "torch.Tensor], d: torch.Tensor, m_indices: torch.Tensor) -> None\n\n"
                "MoE GEMM over experts' rows concatenated along M: D[r] = A[r] @ B[m_indices[r]].T.\n"
                "a = (e4m3 [M, K], scales), b = (e4m3 [G, N, K], scales [G, ceil(N/128), K/128]), d [M, N];\n"
                "m_indices int32 [M], -1 for padding rows; a tile is computed with the expert of its first row.\n"),
    DG_FUNCTION(m_grouped_bf16_gemm_nt_contiguous, kKeywords,
                "m_grouped_bf16_gemm_nt_contiguous(a: torch.Tensor, b: torch.Tensor, d: torch.Tensor, m_indices: "
                "torch.Tensor) -> None\n\n"
                "bf16 version of m_grouped_fp8_gemm_nt_contiguous: a [M, K], b [G, N, K], d [M, N].\n"),
    DG_FUNCTION(m_grouped_fp8_gemm_nt_masked, kKeywords,
                "m_grouped_fp8_gemm_nt_masked(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, "
                "torch.Tensor], d: torch.Tensor, masked_m: torch.Tensor, expected_m: typing.SupportsInt) -> None\n\n"
                "MoE GEMM per group: D[g, :masked_m[g]] = A[g, :masked_m[g]] @ B[g].T. a = (e4m3 [G, M, K], scales),\n"
                "b = (e4m3 [G, N, K], scales), d [G, M, N]; masked_m int32 [G] on the GPU (CUDA-graph capturable).\n"),
    DG_FUNCTION(m_grouped_bf16_gemm_nt_masked, kKeywords,
                "m_grouped_bf16_gemm_nt_masked(a: torch.Tensor, b: torch.Tensor, d: torch.Tensor, masked_m: "
                "torch.Tensor, expected_m: typing.SupportsInt) -> None\n\n"
                "bf16 version of m_grouped_fp8_gemm_nt_masked: a [G, M, K], b [G, N, K], d [G, M, N].\n"),
    DG_FUNCTION(get_mk_alignment_for_contiguous_layout, METH_NOARGS,
                "get_mk_alignment_for_contiguous_layout() -> int\n\n"
                "Rows of each expert's segment in the contiguous layout are a multiple of this.\n"),
    DG_FUNCTION(get_num_sms, METH_NOARGS, "get_num_sms() -> int\n\nSMs the kernels use on the current device.\n"),
    DG_FUNCTION(set_num_sms, kKeywords,
                "set_num_sms(num_sms: typing.SupportsInt) -> None\n\n"
                "Limit the SMs the kernels use on the current device.\n"),
    DG_FUNCTION(kernel_sources, METH_NOARGS,
                "kernel_sources() -> list[tuple[str, str]]\n\n"
                "(name, CUDA source) of every kernel instantiation the API can select; for compile tests.\n"),
    DG_FUNCTION(reload_gemm_plan_overrides, METH_NOARGS,
                "reload_gemm_plan_overrides() -> None\n\nRe-reads DG_GEMM_BLOCK_M, DG_GEMM_BLOCK_N and DG_GEMM_SPLIT_K (read once\n"
                "otherwise): the tile plan the next GEMMs force.\n"),
    DG_FUNCTION(gemm_config, kKeywords,
                "gemm_config(input: str, type: str, m: int, n: int, k: int, num_groups: int = 1,\n"
                "            expected_m: int = 0, output: str = 'bf16', num_sms: int = 132) -> str\n\n"
                "Name of the kernel the tile heuristic picks (input 'fp8'/'bf16', type 'dense'/'contiguous'/\n"
                "'masked', output 'bf16'/'fp32'), followed by ' split-k SxT' when the last T tiles are cut into\n"
                "S K-slices, ' split-m 2xT' when they are cut into their two 64-row halves, and ' b-read-once'\n"
                "when every B tile is read by one CTA (B is then loaded evict-first); needs no GPU. For tests.\n"),
    DG_FUNCTION(init, kKeywords,
                "init(include_dir: str, nvrtc_lib: str, cuda_home: str, cuda_include: str, cache_dir: str) -> None\n\n"
                "Set the JIT's paths (deep_gemm/_loader.py calls this at import). An unwritable cache_dir falls back "
                "to a temporary directory with a warning.\n"),
    DG_FUNCTION(jit_compile, kKeywords,
                "jit_compile(name: str, source: str, entry: str = 'deep_gemm_kernel', arch: str = 'sm_90a') -> dict\n\n"
                "Compile (or fetch from the caches) one kernel without loading it; needs no GPU. Returns "
                "dict(compiler=..., from_cache=..., size=...).\n"),
    DG_FUNCTION(jit_launch, kKeywords,
                "jit_launch(name: str, source: str, grid: tuple[typing.SupportsInt, typing.SupportsInt, "
                "typing.SupportsInt], block: tuple[typing.SupportsInt, typing.SupportsInt, typing.SupportsInt], "
                "shared_bytes: typing.SupportsInt = 0, cluster_x: typing.SupportsInt = 1, args: "
                "collections.abc.Sequence[typing.SupportsInt] = [], stream: typing.SupportsInt = 0, entry: str = "
                "'deep_gemm_kernel') -> None\n\n"
                "Load (through the caches) and launch a kernel on the current device, asynchronously on `stream` (a "
                "cudaStream_t as int). Every kernel parameter must be 8 bytes (pointers, 64-bit ints): `args` holds "
                "their values. For tests and debugging of the JIT layer.\n"),
    DG_FUNCTION(jit_cache_dir, METH_NOARGS,
                "jit_cache_dir() -> str\n\n"
                "The cache directory in use (a temporary one if the configured one is unwritable).\n"),
    // The indexer, mHC and einsum: positional entry points behind deep_gemm/attention.py,
    // hyperconnection.py and einsum.py.
    DG_FUNCTION(fp8_mqa_logits, kKeywords,
                "fp8_mqa_logits(q, q_scales, kv, weights, cu_seq_len_k_start, cu_seq_len_k_end, clean_logits, "
                "max_seqlen_k, logits_dtype: str) -> torch.Tensor\n\n"
                "The indexer's prefill logits; see deep_gemm.fp8_fp4_mqa_logits.\n"),
    DG_FUNCTION(get_paged_mqa_logits_metadata, kKeywords,
                "get_paged_mqa_logits_metadata(context_lens, block_kv, num_sms, indices) -> torch.Tensor\n\n"
                "The paged indexer's schedule; see deep_gemm.get_paged_mqa_logits_metadata.\n"),
    DG_FUNCTION(tf32_hc_prenorm_gemm, kKeywords,
                "tf32_hc_prenorm_gemm(a, b, d, sqr_sum, num_splits: int) -> None\n\n"
                "mHC pre-norm GEMM, num_splits 0 for none; see deep_gemm.tf32_hc_prenorm_gemm.\n"),
    DG_FUNCTION(einsum, kKeywords,
                "einsum(expr: str, a, b, d, c, use_cublaslt: bool) -> None\n\n"
                "DeepGEMM's bf16 einsum expressions; see deep_gemm.einsum.\n"),
    DG_FUNCTION(fp8_einsum, kKeywords,
                "fp8_einsum(expr: str, a, b, d, c, recipe_m: int, recipe_n: int, recipe_k: int) -> None\n\n"
                "DeepGEMM's FP8 einsum; see deep_gemm.fp8_einsum.\n"),
    DG_FUNCTION(fp8_paged_mqa_logits, kKeywords,
                "fp8_paged_mqa_logits(q, q_scales, kv_cache, weights, context_lens, block_table, schedule_meta, "
                "max_context_len, clean_logits, logits_dtype: str, indices) -> torch.Tensor\n\n"
                "The indexer's decode logits over a paged cache; see deep_gemm.fp8_fp4_paged_mqa_logits.\n"),
    DG_FUNCTION(k_grouped_packed_ue8m0, kKeywords,
                "k_grouped_packed_ue8m0(sf, ks: list[int], gran_k: int) -> torch.Tensor\n\n"
                "K-grouped fp32 scales packed into UE8M0 int32 rows on the GPU; see\n"
                "deep_gemm.get_k_grouped_mn_major_tma_aligned_packed_ue8m0_tensor.\n"),
    DG_FUNCTION(mn_major_packed_ue8m0, kKeywords,
                "mn_major_packed_ue8m0(sf) -> torch.Tensor\n\n"
                "fp32 scales packed into MN-major TMA-aligned UE8M0 int32 on the GPU; see\n"
                "deep_gemm.get_mn_major_tma_aligned_packed_ue8m0_tensor.\n"),
    {nullptr, nullptr, 0, nullptr},
};
#undef DG_FUNCTION

PyModuleDef_Slot slots[] = {
#ifdef Py_mod_multiple_interpreters
    // torch supports one interpreter per process (pybind11's default said the same).
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
#ifdef Py_mod_gil
    // GIL-free on free-threaded CPython. Safe: this file keeps no state; conversions read
    // arguments through tuple copies; the runtime's shared state is already guarded for
    // concurrent callers (fp8_gemm_nt, jit_compile and jit_launch run without the GIL on
    // GIL builds too), and the rest touch only the JIT state (swapped under a mutex, old
    // states kept alive), the SM count (atomic) and device properties (mutex-guarded).
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, nullptr},
};

PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "_C",
    "deep_gemm's compiled extension: a thin binding over libdeep_gemm_runtime",
    0,
    methods,
    slots,
    nullptr,
    nullptr,
    nullptr,
};

}  // namespace

PyMODINIT_FUNC PyInit__C() { return PyModuleDef_Init(&module_def); }
