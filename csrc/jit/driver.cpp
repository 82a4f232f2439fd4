// Driver entry points through the CUDA runtime, so that nothing links libcuda.
#include "runtime.hpp"

#include <stdexcept>
#include <string>

namespace deep_gemm::jit {

namespace {

template <typename Fn>
void resolve(Fn& fn, const char* symbol) {
    void* pointer = nullptr;
    cudaDriverEntryPointQueryResult status{};
    // CUDA_VERSION pins the ABI of each entry point to the declaration in the cuda.h
    // that this file was compiled with (the types of the Driver members).
    const cudaError_t error =
        cudaGetDriverEntryPointByVersion(symbol, &pointer, CUDA_VERSION, cudaEnableDefault, &status);
    if (error != cudaSuccess || status != cudaDriverEntryPointSuccess || pointer == nullptr) {
        throw std::runtime_error(
            std::string("deep_gemm: CUDA driver entry point ") + symbol + " (ABI " +
            std::to_string(CUDA_VERSION) + ") is unavailable: " +
            (error != cudaSuccess ? cudaGetErrorString(error)
             : status == cudaDriverEntryPointVersionNotSufficent
                 ? "the installed driver is older than this CUDA version"
                 : "symbol not found in the driver"));
    }
    fn = reinterpret_cast<Fn>(pointer);
}

Driver load_driver() {
    Driver d{};
    resolve(d.cuGetErrorString, "cuGetErrorString");
    resolve(d.cuModuleLoadData, "cuModuleLoadData");
    resolve(d.cuModuleGetFunction, "cuModuleGetFunction");
    resolve(d.cuFuncSetAttribute, "cuFuncSetAttribute");
    resolve(d.cuLaunchKernelEx, "cuLaunchKernelEx");
    resolve(d.cuTensorMapEncodeTiled, "cuTensorMapEncodeTiled");
    return d;
}

}  // namespace

const Driver& driver() {
    static const Driver instance = load_driver();
    return instance;
}

void check_driver(CUresult result, const char* what) {
    if (result == CUDA_SUCCESS)
        return;
    const char* message = nullptr;
    if (driver().cuGetErrorString(result, &message) != CUDA_SUCCESS || message == nullptr)
        message = "unknown CUDA driver error";
    throw std::runtime_error(std::string(what) + ": " + message + " (CUresult " +
                             std::to_string(static_cast<int>(result)) + ")");
}

}  // namespace deep_gemm::jit
