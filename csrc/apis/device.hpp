// Device queries shared by the API entry points.
#pragma once

#include <ATen/Tensor.h>

namespace deep_gemm::api {

// SMs the kernels may use on the current device: all of them unless set_num_sms
// lowered the count (e.g. to leave SMs free for communication kernels).
int get_num_sms();
void set_num_sms(int num_sms);

// Throws unless `tensor`'s device is a Hopper GPU (compute capability 9.0, the
// only target the sm_90a kernels run on).
void require_sm90(const at::Tensor& tensor, const char* op);

}  // namespace deep_gemm::api
