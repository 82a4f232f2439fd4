// Internal: the two ways to turn a KernelSource into a cubin.
#pragma once

#include "runtime.hpp"

#include <memory>
#include <string>
#include <vector>

namespace deep_gemm::jit::detail {

class Compiler {
public:
    virtual ~Compiler() = default;
    // "nvrtc 13.0" / "nvcc 13.0": reported with every Cubin.
    virtual const std::string& name() const = 0;
    // Everything about the compiler and its flags that can change the cubin, except
    // the include paths (the cache key covers the headers by content instead).
    virtual const std::string& fingerprint() const = 0;
    // Throws std::runtime_error with the kernel name, the compiler and its log.
    virtual std::vector<char> compile(const KernelSource& kernel) const = 0;
};

// NVRTC from paths.nvrtc_lib, or nvcc from paths.cuda_home when NVRTC cannot be
// loaded or $DG_JIT_USE_NVCC=1. Throws when neither is usable, saying why for each.
std::unique_ptr<Compiler> make_compiler(const Paths& paths);

}  // namespace deep_gemm::jit::detail
