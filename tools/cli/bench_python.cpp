// `ion bench python`: the figures come from a Python program (bench/python_bench.py) that drives
// libion and capi_bench of this build tree.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "cli/command.h"

namespace ion::cli {
namespace {

int run_python_bench(double seconds, bool json) {
  std::error_code ec;
  const std::filesystem::path bin = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
  const std::filesystem::path build = bin.parent_path();
  const std::string script = std::string(ION_SOURCE_DIR) + "/bench/python_bench.py";
  const std::string lib = (build / "lib" / "libion.so.1").string();
  const std::string capi_bench = (build / "bench" / "capi_bench").string();
  for (const auto& f : {script, lib, capi_bench}) {
    if (!std::filesystem::exists(f)) {
      std::fprintf(stderr, "ion bench python: %s is missing (a build tree with benchmarks is needed)\n",
                   f.c_str());
      return 2;
    }
  }
  ::setenv("ION_LIBRARY", lib.c_str(), 1);
  const std::string secs = std::to_string(seconds);
  // ION_PYTHON: another interpreter, e.g. a venv's with pylsl for the LSL figures. argv[0] is its
  // path: a venv's interpreter finds its environment from it.
  const char* python = std::getenv("ION_PYTHON");
  if (python == nullptr || *python == '\0') python = "/usr/bin/python3";
  std::vector<const char*> argv = {python, script.c_str(), "--bin-dir", bin.c_str(),
                                   "--capi-bench", capi_bench.c_str(), "--seconds", secs.c_str()};
  if (json) argv.push_back("--json");
  argv.push_back(nullptr);
  ::execv(python, const_cast<char* const*>(argv.data()));
  std::fprintf(stderr, "ion bench python: cannot run %s: %s\n", python, std::strerror(errno));
  return 2;
}

class BenchPythonCommand final : public Command {
 public:
  CLI::App* add(CLI::App& parent, Context& /*ctx*/) override {
    CLI::App* c = parent.add_subcommand(
        "python", "the Python package against the C++ node in the same run: emit throughput "
                  "(batches of 256), delivery error at 1000 events/s, the LSL bridge against plain "
                  "LSL (bench/python_bench.py, with /usr/bin/python3 or $ION_PYTHON)");
    c->add_option("--seconds", seconds_, "per measurement")
        ->check(CLI::Range(0.5, 600.0))->capture_default_str();
    c->add_flag("--json", json_, "end with one JSON line");
    return c;
  }
  int run(Context& /*ctx*/) override { return run_python_bench(seconds_, json_); }

 private:
  double seconds_ = 5.0;
  bool json_ = false;
};

}  // namespace

std::unique_ptr<Command> make_bench_python_command() { return std::make_unique<BenchPythonCommand>(); }

}  // namespace ion::cli
