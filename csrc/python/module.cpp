// deep_gemm._C: the Python names of libdeep_gemm_runtime (csrc/jit, csrc/apis).
//
// The only part of deep_gemm built once per CPython and shipped once per CPython in
// the fat wheel, so it is written on CPython's C API rather than pybind11: pybind11's
// per-module machinery (dispatcher, internals, type registry) alone is ~47 KB
// compressed and ~4 s of compile per CPython; this file is ~10 KB and ~2.5 s.
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
#include <type_traits>
#include <utility>
#include <vector>

#include "../apis/device.hpp"
#include "../apis/gemm.hpp"
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

// load(), or a TypeError naming the function, the argument and the expected type.
template <typename T>
bool convert(const char* function, const char* argument, const char* expected, PyObject* o, T& out) {
    if (load(o, out)) return true;
    if (!PyErr_Occurred())
        PyErr_Format(PyExc_TypeError, "%s(): argument '%s' must be %s, not %s", function, argument, expected,
                     Py_TYPE(o)->tp_name);
    return false;
}

PyObject* new_str(const std::string& s) { return PyUnicode_FromStringAndSize(s.data(), static_cast<Py_ssize_t>(s.size())); }

constexpr const char* kTensorPair = "a (torch.Tensor, torch.Tensor) pair";
constexpr const char* kDim3 = "a sequence of 3 non-negative ints";

// ---- the module's functions -------------------------------------------------------

PyObject* fp8_gemm_nt(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* names[] = {"a", "b", "d", "c", nullptr};
    PyObject *a, *b, *d, *c = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO|O:fp8_gemm_nt", const_cast<char**>(names), &a, &b, &d, &c))
        return nullptr;
    return guarded([&]() -> PyObject* {
        constexpr const char* fn = "fp8_gemm_nt";
        api::ScaledTensor ta, tb;
        at::Tensor td;
        std::optional<at::Tensor> tc;
        if (!convert(fn, "a", kTensorPair, a, ta) || !convert(fn, "b", kTensorPair, b, tb) ||
            !convert(fn, "d", "a torch.Tensor", d, td) ||
            (c != Py_None && !convert(fn, "c", "a torch.Tensor or None", c, tc.emplace())))
            return nullptr;
        {
            GilRelease nogil;
            api::fp8_gemm_nt(ta, tb, td, tc);
        }
        Py_RETURN_NONE;
    });
}

PyObject* get_num_sms(PyObject*, PyObject*) {
    return guarded([] { return PyLong_FromLong(api::get_num_sms()); });
}

PyObject* set_num_sms(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* names[] = {"num_sms", nullptr};
    PyObject* num_sms;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:set_num_sms", const_cast<char**>(names), &num_sms))
        return nullptr;
    return guarded([&]() -> PyObject* {
        int value = 0;
        if (!convert("set_num_sms", "num_sms", "an int", num_sms, value)) return nullptr;
        api::set_num_sms(value);
        Py_RETURN_NONE;
    });
}

PyObject* kernel_sources(PyObject*, PyObject*) {
    return guarded([]() -> PyObject* {
        const auto sources = api::kernel_sources();
        Ref list(PyList_New(static_cast<Py_ssize_t>(sources.size())));
        if (list.ptr == nullptr) return nullptr;
        for (size_t i = 0; i < sources.size(); ++i) {
            PyObject* pair = Py_BuildValue("(s#s#)", sources[i].first.data(), static_cast<Py_ssize_t>(sources[i].first.size()),
                                           sources[i].second.data(), static_cast<Py_ssize_t>(sources[i].second.size()));
            if (pair == nullptr) return nullptr;
            PyList_SET_ITEM(list.ptr, static_cast<Py_ssize_t>(i), pair);  // steals `pair`
        }
        return std::exchange(list.ptr, nullptr);
    });
}

PyObject* init(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* names[] = {"include_dir", "nvrtc_lib", "cuda_home", "cuda_include", "cache_dir", nullptr};
    PyObject* objects[5];
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOO:init", const_cast<char**>(names), &objects[0], &objects[1],
                                     &objects[2], &objects[3], &objects[4]))
        return nullptr;
    return guarded([&]() -> PyObject* {
        jit::Paths paths;
        std::string* fields[] = {&paths.include_dir, &paths.nvrtc_lib, &paths.cuda_home, &paths.cuda_include,
                                 &paths.cache_dir};
        for (int i = 0; i < 5; ++i)
            if (!convert("init", names[i], "a str", objects[i], *fields[i])) return nullptr;
        jit::init(paths);
        Py_RETURN_NONE;
    });
}

PyObject* jit_compile(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* names[] = {"name", "source", "entry", "arch", nullptr};
    PyObject *name, *source, *entry = nullptr, *arch = nullptr;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|OO:jit_compile", const_cast<char**>(names), &name, &source,
                                     &entry, &arch))
        return nullptr;
    return guarded([&]() -> PyObject* {
        constexpr const char* fn = "jit_compile";
        jit::KernelSource kernel;  // entry and arch default to deep_gemm_kernel / sm_90a
        if (!convert(fn, "name", "a str", name, kernel.name) || !convert(fn, "source", "a str", source, kernel.source) ||
            (entry != nullptr && !convert(fn, "entry", "a str", entry, kernel.entry)) ||
            (arch != nullptr && !convert(fn, "arch", "a str", arch, kernel.arch)))
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
    static const char* names[] = {"name", "source", "grid", "block", "shared_bytes", "cluster_x",
                                  "args", "stream", "entry", nullptr};
    PyObject *name, *source, *grid, *block, *shared = nullptr, *cluster = nullptr, *values = nullptr,
                                                    *stream = nullptr, *entry = nullptr;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOO|OOOOO:jit_launch", const_cast<char**>(names), &name, &source,
                                     &grid, &block, &shared, &cluster, &values, &stream, &entry))
        return nullptr;
    return guarded([&]() -> PyObject* {
        constexpr const char* fn = "jit_launch";
        jit::KernelSource kernel;
        jit::LaunchConfig config;
        std::vector<uint64_t> params;
        uintptr_t stream_handle = 0;
        if (!convert(fn, "name", "a str", name, kernel.name) || !convert(fn, "source", "a str", source, kernel.source) ||
            !convert(fn, "grid", kDim3, grid, config.grid) || !convert(fn, "block", kDim3, block, config.block) ||
            (shared != nullptr && !convert(fn, "shared_bytes", "a non-negative int", shared, config.shared_bytes)) ||
            (cluster != nullptr && !convert(fn, "cluster_x", "a non-negative int", cluster, config.cluster_x)) ||
            (values != nullptr && !convert(fn, "args", "a sequence of non-negative ints", values, params)) ||
            (stream != nullptr && !convert(fn, "stream", "a non-negative int", stream, stream_handle)) ||
            (entry != nullptr && !convert(fn, "entry", "a str", entry, kernel.entry)))
            return nullptr;
        config.stream = reinterpret_cast<cudaStream_t>(stream_handle);
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

// ---- the module -------------------------------------------------------------------

// The docstrings are the ones pybind11 generated for the previous binding, so that
// help() reads as before.
#define DG_FUNCTION(name, flags, doc) {#name, reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(name)), flags, doc}
constexpr int kKeywords = METH_VARARGS | METH_KEYWORDS;
PyMethodDef methods[] = {
    DG_FUNCTION(fp8_gemm_nt, kKeywords,
                "fp8_gemm_nt(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor], d: "
                "torch.Tensor, c: torch.Tensor | None = None) -> None\n\n"
                "D = A @ B.T (+ C) for e4m3 A [M, K] and B [N, K] with DeepGEMM's 1x128 / 128x128 block scales.\n"
                "a and b are (data, scales) pairs; d is bf16 or fp32 [M, N]; c (fp32) needs an fp32 d.\n"),
    DG_FUNCTION(get_num_sms, METH_NOARGS, "get_num_sms() -> int\n\nSMs the kernels use on the current device.\n"),
    DG_FUNCTION(set_num_sms, kKeywords,
                "set_num_sms(num_sms: typing.SupportsInt) -> None\n\n"
                "Limit the SMs the kernels use on the current device.\n"),
    DG_FUNCTION(kernel_sources, METH_NOARGS,
                "kernel_sources() -> list[tuple[str, str]]\n\n"
                "(name, CUDA source) of every kernel instantiation the API can select; for compile tests.\n"),
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
