#include "compiler.hpp"
#include "files.hpp"
#include "util.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <nvrtc.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>
#include <stdexcept>

extern char** environ;

namespace deep_gemm::jit::detail {

namespace {

// Flags shared by both compilers; -I paths are added by each.
const char* const kCommonFlags[] = {"-std=c++17", "-DNDEBUG"};

std::string common_flags() {
    std::string flags;
    for (const char* flag : kCommonFlags)
        flags += std::string(flag) + " ";
    return flags;
}

[[noreturn]] void compile_failed(const KernelSource& kernel, const std::string& compiler,
                                 const std::string& log) {
    throw std::runtime_error("deep_gemm JIT: " + compiler + " failed to compile kernel '" +
                             kernel.name + "' (" + kernel.arch + "):\n" + log);
}

// ---------------------------------------------------------------------------- NVRTC

class Nvrtc final : public Compiler {
public:
    explicit Nvrtc(const Paths& paths) {
        std::string library = paths.nvrtc_lib.empty() ? "libnvrtc.so.13" : paths.nvrtc_lib;
        if (!paths.nvrtc_lib.empty())
            preload_builtins(parent_path(paths.nvrtc_lib));
        // Never dlclose()d: the entry points live as long as the process.
        void* handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (handle == nullptr)
            throw std::runtime_error("cannot load NVRTC '" + library + "': " + dlerror());
        resolve(handle, create_, "nvrtcCreateProgram");
        resolve(handle, compile_, "nvrtcCompileProgram");
        resolve(handle, log_size_, "nvrtcGetProgramLogSize");
        resolve(handle, log_, "nvrtcGetProgramLog");
        resolve(handle, cubin_size_, "nvrtcGetCUBINSize");
        resolve(handle, cubin_, "nvrtcGetCUBIN");
        resolve(handle, destroy_, "nvrtcDestroyProgram");
        resolve(handle, error_string_, "nvrtcGetErrorString");
        decltype(&::nvrtcVersion) version = nullptr;
        resolve(handle, version, "nvrtcVersion");
        int major = 0, minor = 0;
        version(&major, &minor);
        name_ = "nvrtc " + std::to_string(major) + "." + std::to_string(minor);
        fingerprint_ = name_ + " " + common_flags() + "-default-device";
        options_ = {kCommonFlags[0], kCommonFlags[1], "-default-device",
                    "-I" + paths.include_dir};
        if (!paths.cuda_include.empty())
            options_.push_back("-I" + paths.cuda_include);
    }

    const std::string& name() const override { return name_; }
    const std::string& fingerprint() const override { return fingerprint_; }

    std::vector<char> compile(const KernelSource& kernel) const override {
        std::vector<std::string> options = options_;
        options.push_back("--gpu-architecture=" + kernel.arch);
        std::vector<const char*> argv;
        for (const auto& option : options)
            argv.push_back(option.c_str());

        nvrtcProgram program = nullptr;
        check(create_(&program, kernel.source.c_str(), (kernel.name + ".cu").c_str(), 0, nullptr,
                      nullptr),
              "nvrtcCreateProgram", kernel);
        struct Destroy {
            const Nvrtc* self;
            nvrtcProgram* program;
            ~Destroy() { self->destroy_(program); }
        } destroy{this, &program};

        const nvrtcResult result = compile_(program, static_cast<int>(argv.size()), argv.data());
        size_t log_size = 0;
        check(log_size_(program, &log_size), "nvrtcGetProgramLogSize", kernel);
        std::string log(log_size, '\0');
        check(log_(program, log.data()), "nvrtcGetProgramLog", kernel);
        log.resize(std::strlen(log.c_str()));
        if (result != NVRTC_SUCCESS)
            compile_failed(kernel, name_, std::string(error_string_(result)) + "\n" + log);

        size_t size = 0;
        check(cubin_size_(program, &size), "nvrtcGetCUBINSize", kernel);
        std::vector<char> cubin(size);
        check(cubin_(program, cubin.data()), "nvrtcGetCUBIN", kernel);
        return cubin;
    }

private:
    // libnvrtc dlopen()s libnvrtc-builtins by soname; loading it first by full path
    // makes that succeed without LD_LIBRARY_PATH.
    static void preload_builtins(const std::string& dir) {
        for (const auto& name : list_directory(dir))
            if (name.rfind("libnvrtc-builtins.so.", 0) == 0 &&
                dlopen((dir + "/" + name).c_str(), RTLD_NOW | RTLD_GLOBAL) != nullptr)
                return;
    }

    template <typename Fn>
    static void resolve(void* handle, Fn& fn, const char* symbol) {
        fn = reinterpret_cast<Fn>(dlsym(handle, symbol));
        if (fn == nullptr)
            throw std::runtime_error(std::string("NVRTC lacks ") + symbol);
    }

    void check(nvrtcResult result, const char* what, const KernelSource& kernel) const {
        if (result != NVRTC_SUCCESS)
            compile_failed(kernel, name_, std::string(what) + ": " + error_string_(result));
    }

    decltype(&::nvrtcCreateProgram) create_ = nullptr;
    decltype(&::nvrtcCompileProgram) compile_ = nullptr;
    decltype(&::nvrtcGetProgramLogSize) log_size_ = nullptr;
    decltype(&::nvrtcGetProgramLog) log_ = nullptr;
    decltype(&::nvrtcGetCUBINSize) cubin_size_ = nullptr;
    decltype(&::nvrtcGetCUBIN) cubin_ = nullptr;
    decltype(&::nvrtcDestroyProgram) destroy_ = nullptr;
    decltype(&::nvrtcGetErrorString) error_string_ = nullptr;
    std::string name_, fingerprint_;
    std::vector<std::string> options_;
};

// ---------------------------------------------------------------------------- nvcc

// A fresh directory under $TMPDIR (or /tmp), removed with the object.
class TempDir {
public:
    TempDir() : path_(make_temp_directory("deep_gemm-nvcc-")) {}
    ~TempDir() { remove_tree(path_); }
    const std::string& path() const { return path_; }
private:
    std::string path_;
};

// Runs argv with stdout+stderr sent to `log`; returns the exit status (-1: not run).
int run(const std::vector<std::string>& args, const std::string& log) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    std::vector<char*> argv;
    for (const auto& arg : args)
        argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    pid_t pid = 0;
    const int error = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (error != 0)
        return -1;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

class Nvcc final : public Compiler {
public:
    explicit Nvcc(const Paths& paths) : include_dir_(paths.include_dir) {
        if (paths.cuda_home.empty())
            throw std::runtime_error("no CUDA_HOME for nvcc");
        nvcc_ = paths.cuda_home + "/bin/nvcc";
        if (access(nvcc_.c_str(), X_OK) != 0)
            throw std::runtime_error("nvcc '" + nvcc_ + "' is not executable");
        TempDir tmp;
        const std::string log = tmp.path() + "/version.txt";
        const int status = run({nvcc_, "--version"}, log);
        const std::string output = read_file(log);
        std::smatch match;
        static const std::regex release("release ([0-9]+\\.[0-9]+)");
        if (status != 0 || !std::regex_search(output, match, release))
            throw std::runtime_error("'" + nvcc_ + " --version' failed (status " +
                                     std::to_string(status) + "): " + output);
        name_ = "nvcc " + match[1].str();
        fingerprint_ = output + common_flags();
    }

    const std::string& name() const override { return name_; }
    const std::string& fingerprint() const override { return fingerprint_; }

    std::vector<char> compile(const KernelSource& kernel) const override {
        TempDir tmp;
        const std::string source = tmp.path() + "/kernel.cu", cubin = tmp.path() + "/kernel.cubin",
                          log = tmp.path() + "/log.txt";
        std::ofstream(source, std::ios::binary) << kernel.source;
        const std::string virtual_arch = "compute_" + kernel.arch.substr(3);
        std::vector<std::string> args = {nvcc_, "-cubin", "-gencode",
                                         "arch=" + virtual_arch + ",code=" + kernel.arch};
        args.insert(args.end(), std::begin(kCommonFlags), std::end(kCommonFlags));
        args.insert(args.end(), {"-I" + include_dir_, "-o", cubin, source});
        const int status = run(args, log);
        if (status != 0) {
            std::string command;
            for (const auto& arg : args)
                command += arg + " ";
            compile_failed(kernel, name_,
                           command + "\n(exit status " + std::to_string(status) + ")\n" + read_file(log));
        }
        const std::string bytes = read_file(cubin);
        if (bytes.empty())
            compile_failed(kernel, name_, "nvcc wrote no cubin\n" + read_file(log));
        return {bytes.begin(), bytes.end()};
    }

private:
    std::string nvcc_, include_dir_, name_, fingerprint_;
};

}  // namespace

std::unique_ptr<Compiler> make_compiler(const Paths& paths) {
    std::string nvrtc_error = "disabled by DG_JIT_USE_NVCC=1";
    if (env("DG_JIT_USE_NVCC") != "1") {
        try {
            return std::make_unique<Nvrtc>(paths);
        } catch (const std::exception& e) {
            nvrtc_error = e.what();
        }
    }
    try {
        auto nvcc = std::make_unique<Nvcc>(paths);
        if (env("DG_JIT_USE_NVCC") != "1")
            warn("NVRTC unavailable (" + nvrtc_error + "); compiling kernels with " + nvcc->name());
        return nvcc;
    } catch (const std::exception& e) {
        throw std::runtime_error("deep_gemm JIT: no usable CUDA compiler. NVRTC: " + nvrtc_error +
                                 ". nvcc: " + e.what() +
                                 ". Install torch's nvidia-cuda-nvrtc or set CUDA_HOME to a CUDA toolkit.");
    }
}

}  // namespace deep_gemm::jit::detail
