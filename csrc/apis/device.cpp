#include "device.hpp"

#include <c10/cuda/CUDAFunctions.h>
#include <c10/util/Exception.h>
#include <cuda_runtime.h>

#include <atomic>
#include <deque>
#include <mutex>

namespace deep_gemm::api {
namespace {

std::atomic<int> requested_sms{0};  // 0: every SM of the device

// cudaGetDeviceProperties is slow (it queries every attribute): once per device.
const cudaDeviceProp& properties(int device) {
    static std::mutex mutex;
    static std::deque<std::pair<int, cudaDeviceProp>> cache;  // deque: references stay valid
    std::lock_guard<std::mutex> lock(mutex);
    for (const auto& [cached_device, prop] : cache)
        if (cached_device == device) return prop;
    cudaDeviceProp prop;
    const cudaError_t status = cudaGetDeviceProperties(&prop, device);
    TORCH_CHECK(status == cudaSuccess, "cudaGetDeviceProperties(", device, "): ", cudaGetErrorString(status));
    return cache.emplace_back(device, prop).second;
}

int available_sms() { return properties(c10::cuda::current_device()).multiProcessorCount; }

}  // namespace

int get_num_sms() {
    const int requested = requested_sms.load();
    return requested == 0 ? available_sms() : std::min(requested, available_sms());
}

void set_num_sms(int num_sms) {
    const int available = available_sms();
    TORCH_CHECK_VALUE(num_sms >= 1 && num_sms <= available, "set_num_sms: num_sms must be in [1, ", available,
                      "] on this device, got ", num_sms);
    requested_sms = num_sms;
}

void require_sm90(const at::Tensor& tensor, const char* op) {
    const cudaDeviceProp& prop = properties(tensor.get_device());
    TORCH_CHECK(prop.major == 9 && prop.minor == 0, op, ": needs a Hopper GPU (compute capability 9.0), but ",
                tensor.device(), " is ", prop.name, " (compute capability ", prop.major, ".", prop.minor, ")");
}

}  // namespace deep_gemm::api
