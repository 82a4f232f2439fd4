// Internal helpers of the JIT layer (not part of its interface).
#pragma once

#include <c10/util/hash.h>

#include <string>
#include <string_view>

namespace deep_gemm::jit::detail {

// SHA-1 (c10::sha1) over a sequence of length-prefixed fields, so that
// ("ab", "c") != ("a", "bc"). c10::sha1 only hashes a whole string, hence the buffer.
class Hasher {
public:
    Hasher& add(std::string_view field) {
        buffer_ += std::to_string(field.size());
        buffer_ += ':';
        buffer_ += field;
        return *this;
    }
    std::string hex() const { return c10::sha1(buffer_).str(); }
private:
    std::string buffer_;
};

// "[deep_gemm] warning: <message>" on stderr.
void warn(const std::string& message);

// Value of an environment variable, "" when unset.
std::string env(const char* name);

}  // namespace deep_gemm::jit::detail
