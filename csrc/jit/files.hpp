// Internal: the few file-system operations the JIT needs, on POSIX calls.
//
// Not std::filesystem: libtorch.so and libtorch_cpu.so export their own copies of its
// functions, and when torch is loaded RTLD_GLOBAL those win symbol lookup over
// libstdc++'s; libtorch.so's remove_all() then jumps to address 0.
#pragma once

#include <string>
#include <vector>

namespace deep_gemm::jit::detail {

bool is_directory(const std::string& path);
bool is_regular_file(const std::string& path);
// mkdir -p; "" on success, else the reason.
std::string make_directories(const std::string& path);
// rm -rf, ignoring errors.
void remove_tree(const std::string& path);
// Regular files under `root`, as sorted paths relative to it ('/'-separated).
std::vector<std::string> list_files_recursive(const std::string& root);
// Entry names directly in `dir` (no "." or ".."), sorted; empty if unreadable.
std::vector<std::string> list_directory(const std::string& dir);
std::string parent_path(const std::string& path);
std::string read_file(const std::string& path);
// A fresh directory "<$TMPDIR or /tmp>/<prefix>XXXXXX"; throws on failure.
std::string make_temp_directory(const std::string& prefix);

}  // namespace deep_gemm::jit::detail
