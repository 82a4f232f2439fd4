#include "cache.hpp"
#include "files.hpp"
#include "util.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>

namespace deep_gemm::jit::detail {

namespace {

constexpr char kMagic[8] = {'D', 'G', 'C', 'U', 'B', 'I', 'N', '1'};
constexpr size_t kDigestSize = 40;  // hex SHA-1
constexpr size_t kHeaderSize = sizeof(kMagic) + sizeof(uint64_t) + kDigestSize;

std::string digest(const char* data, size_t size) {
    return Hasher().add(std::string_view(data, size)).hex();
}

// Writes all of `data` to `fd`; false with errno set on failure.
bool write_all(int fd, const char* data, size_t size) {
    while (size > 0) {
        const ssize_t written = ::write(fd, data, size);
        if (written < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        data += written;
        size -= static_cast<size_t>(written);
    }
    return true;
}

// Creates <dir>/<prefix>XXXXXX exclusively; returns its fd (-1 with errno on failure).
int make_temp(const std::string& dir, const std::string& prefix, std::string& path) {
    path = dir + "/" + prefix + "XXXXXX";
    return mkstemp(path.data());
}

// "" when `dir` (created if missing) accepts new files, else the reason it does not.
std::string unwritable_reason(const std::string& dir) {
    if (std::string reason = make_directories(dir); !reason.empty())
        return "cannot create it: " + reason;
    std::string probe;
    const int fd = make_temp(dir, ".probe-", probe);
    if (fd < 0)
        return std::string("cannot create files in it: ") + std::strerror(errno);
    ::close(fd);
    ::unlink(probe.c_str());
    return "";
}

}  // namespace

DiskCache::DiskCache(const std::string& dir) : dir_(dir) {
    if (dir.empty())
        throw std::invalid_argument("deep_gemm JIT: the cache directory must not be empty");
    const std::string reason = unwritable_reason(dir + "/cubin");
    if (reason.empty())
        return;
    std::string temp;
    try {
        temp = make_temp_directory("deep_gemm-jit-cache-");
    } catch (const std::exception& e) {
        throw std::runtime_error("deep_gemm JIT: cache directory '" + dir + "' is unusable (" + reason +
                                 ") and so is the fallback: " + e.what());
    }
    dir_ = temp;
    temporary_ = true;
    warn("JIT cache directory '" + dir + "' is not writable (" + reason + "); caching kernels in '" +
         temp + "' for this process only. Set DG_JIT_CACHE_DIR to a writable directory.");
}

DiskCache::~DiskCache() {
    if (temporary_)
        remove_tree(dir_);
}

std::string DiskCache::entry_path(const std::string& key) const {
    return dir_ + "/cubin/" + key.substr(0, 2) + "/" + key + ".entry";
}

std::optional<std::vector<char>> DiskCache::load(const std::string& key, const std::string& name) const {
    const std::string path = entry_path(key);
    if (!is_regular_file(path))
        return std::nullopt;
    const std::string bytes = read_file(path);

    std::string problem;
    uint64_t size = 0;
    if (bytes.size() < kHeaderSize || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
        problem = "bad header";
    } else {
        std::memcpy(&size, bytes.data() + sizeof(kMagic), sizeof(size));
        const std::string stored(bytes.data() + sizeof(kMagic) + sizeof(size), kDigestSize);
        if (bytes.size() - kHeaderSize != size)
            problem = "truncated or overlong: " + std::to_string(bytes.size() - kHeaderSize) +
                      " payload bytes, header says " + std::to_string(size);
        else if (digest(bytes.data() + kHeaderSize, size) != stored)
            problem = "checksum mismatch";
    }
    if (!problem.empty()) {
        warn("JIT cache entry '" + path + "' for kernel '" + name + "' is corrupted (" + problem +
             "); rebuilding it");
        return std::nullopt;
    }
    return std::vector<char>(bytes.begin() + kHeaderSize, bytes.end());
}

void DiskCache::store(const std::string& key, const std::vector<char>& cubin) const {
    const std::string path = entry_path(key);
    make_directories(parent_path(path));  // a failure shows in make_temp below

    std::string header(kMagic, sizeof(kMagic));
    const uint64_t size = cubin.size();
    header.append(reinterpret_cast<const char*>(&size), sizeof(size));
    header += digest(cubin.data(), cubin.size());

    std::string temp, failure;
    const int fd = make_temp(parent_path(path), "." + key + ".tmp-", temp);
    if (fd < 0) {
        failure = std::string("cannot create a temporary file: ") + std::strerror(errno);
    } else {
        ::fchmod(fd, 0644);  // mkstemp's 0600 would hide entries from other users of a shared cache
        if (!write_all(fd, header.data(), header.size()) || !write_all(fd, cubin.data(), cubin.size()))
            failure = std::string("write: ") + std::strerror(errno);
        if (::close(fd) != 0 && failure.empty())
            failure = std::string("close: ") + std::strerror(errno);
        if (failure.empty() && ::rename(temp.c_str(), path.c_str()) != 0)
            failure = std::string("rename: ") + std::strerror(errno);
        if (!failure.empty())
            ::unlink(temp.c_str());
    }
    if (!failure.empty())
        warn("cannot write JIT cache entry '" + path + "' (" + failure + ")");
}

}  // namespace deep_gemm::jit::detail
