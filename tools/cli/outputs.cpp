#include "cli/outputs.h"

#include <filesystem>
#include <system_error>

namespace ion {

namespace fs = std::filesystem;

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (fs::exists(a, ec) && fs::exists(b, ec)) {
    const bool eq = fs::equivalent(a, b, ec);  // same device and inode: hard links too
    if (!ec) return eq;
  }
  const fs::path pa = fs::weakly_canonical(fs::absolute(a, ec), ec);
  const fs::path pb = fs::weakly_canonical(fs::absolute(b, ec), ec);
  return pa == pb;
}

void check_output(const std::string& out, const std::vector<std::string>& inputs, bool force,
                  const std::string& what) {
  for (const auto& in : inputs) {
    if (!in.empty() && same_file(out, in)) {
      throw OutputRefused(what + " '" + out + "' is this command's input '" + in +
                          "': write the output elsewhere (an output never replaces an input)");
    }
  }
  std::error_code ec;
  if (!force && fs::exists(out, ec)) {
    throw OutputRefused(what + " '" + out + "' exists: choose another name, or give --force to "
                        "replace it");
  }
  // `-o recordings/session.ionrec` makes `recordings/` when it is missing.
  const fs::path parent = fs::path(out).parent_path();
  if (!parent.empty() && !fs::is_directory(parent, ec)) {
    fs::create_directories(parent, ec);
    if (ec) {
      throw OutputRefused(what + " '" + out + "': cannot make the folder '" + parent.string() +
                          "': " + ec.message());
    }
  }
}

}  // namespace ion
