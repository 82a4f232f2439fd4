#include "files.hpp"
#include "util.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace deep_gemm::jit::detail {

namespace {

bool stat_mode(const std::string& path, mode_t type) {
    struct stat st{};
    return ::stat(path.c_str(), &st) == 0 && (st.st_mode & S_IFMT) == type;
}

void collect_files(const std::string& root, const std::string& relative, std::vector<std::string>& out) {
    const std::string dir = relative.empty() ? root : root + "/" + relative;
    for (const auto& name : list_directory(dir)) {
        const std::string child = relative.empty() ? name : relative + "/" + name;
        const std::string full = root + "/" + child;
        if (is_directory(full))
            collect_files(root, child, out);
        else if (is_regular_file(full))
            out.push_back(child);
    }
}

}  // namespace

bool is_directory(const std::string& path) { return stat_mode(path, S_IFDIR); }

bool is_regular_file(const std::string& path) { return stat_mode(path, S_IFREG); }

std::string make_directories(const std::string& path) {
    if (path.empty() || is_directory(path))
        return "";
    const std::string parent = parent_path(path);
    if (!parent.empty() && parent != path) {
        if (std::string reason = make_directories(parent); !reason.empty())
            return reason;
    }
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST)
        return "mkdir '" + path + "': " + std::strerror(errno);
    return is_directory(path) ? "" : "'" + path + "' exists and is not a directory";
}

void remove_tree(const std::string& path) {
    struct stat st{};
    if (::lstat(path.c_str(), &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        for (const auto& name : list_directory(path))
            remove_tree(path + "/" + name);
        ::rmdir(path.c_str());
    } else {
        ::unlink(path.c_str());
    }
}

std::vector<std::string> list_files_recursive(const std::string& root) {
    std::vector<std::string> files;
    collect_files(root, "", files);
    std::sort(files.begin(), files.end());
    return files;
}

std::vector<std::string> list_directory(const std::string& dir) {
    std::vector<std::string> names;
    DIR* handle = ::opendir(dir.c_str());
    if (handle == nullptr)
        return names;
    while (const dirent* entry = ::readdir(handle)) {
        const std::string name = entry->d_name;
        if (name != "." && name != "..")
            names.push_back(name);
    }
    ::closedir(handle);
    std::sort(names.begin(), names.end());
    return names;
}

std::string parent_path(const std::string& path) {
    const auto slash = path.find_last_of('/');
    if (slash == std::string::npos)
        return "";
    return slash == 0 ? "/" : path.substr(0, slash);
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string make_temp_directory(const std::string& prefix) {
    const std::string base = env("TMPDIR");
    std::string pattern = (base.empty() ? std::string("/tmp") : base) + "/" + prefix + "XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr)
        throw std::runtime_error("deep_gemm JIT: cannot create a temporary directory " + pattern + ": " +
                                 std::strerror(errno));
    return pattern;
}

}  // namespace deep_gemm::jit::detail
