#include "device.hpp"

#include <ATen/cuda/CUDAContext.h>
#include <c10/util/Exception.h>

#include <atomic>

namespace deep_gemm::api {
namespace {
std::atomic<int> requested_sms{0};  // 0: every SM of the device
}

int get_num_sms() {
    const int available = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
    const int requested = requested_sms.load();
    return requested == 0 ? available : std::min(requested, available);
}

void set_num_sms(int num_sms) {
    const int available = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
    TORCH_CHECK_VALUE(num_sms >= 1 && num_sms <= available, "set_num_sms: num_sms must be in [1, ", available,
                      "] on this device, got ", num_sms);
    requested_sms = num_sms;
}

void require_sm90(const at::Tensor& tensor, const char* op) {
    const cudaDeviceProp* prop = at::cuda::getDeviceProperties(tensor.get_device());
    TORCH_CHECK(prop->major == 9 && prop->minor == 0, op, ": needs a Hopper GPU (compute capability 9.0), but ",
                tensor.device(), " is ", prop->name, " (compute capability ", prop->major, ".", prop->minor, ")");
}

}  // namespace deep_gemm::api
