// Internal: the on-disk cubin cache.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace deep_gemm::jit::detail {

// Entries live at <dir>/cubin/<key[0:2]>/<key>.entry: a header carrying the payload's
// size and SHA-1, then the cubin. Writes go to a temporary file in the same directory
// and are renamed into place, so concurrent writers of one key never expose a
// partial entry and the last rename wins with identical content.
class DiskCache {
public:
    // Creates `dir` if needed. When it cannot be written, falls back to a fresh
    // temporary directory (removed at exit) and warns once, naming both and why.
    explicit DiskCache(const std::string& dir);
    ~DiskCache();
    DiskCache(const DiskCache&) = delete;
    DiskCache& operator=(const DiskCache&) = delete;

    const std::string& dir() const { return dir_; }
    // The cubin stored under `key`; nullopt when absent, or when corrupted or
    // truncated (with a warning naming `name` and the file: the caller rebuilds it).
    std::optional<std::vector<char>> load(const std::string& key, const std::string& name) const;
    // Failure to store only warns: the caller still has its cubin.
    void store(const std::string& key, const std::vector<char>& cubin) const;
    std::string entry_path(const std::string& key) const;

private:
    std::string dir_;
    bool temporary_ = false;
};

}  // namespace deep_gemm::jit::detail
