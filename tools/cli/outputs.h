#pragma once
// Recordings are the lab's data: a command never writes over one of its inputs, and never over
// an existing file unless told to (--force).
#include <stdexcept>
#include <string>
#include <vector>

namespace ion {

class OutputRefused : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Whether two paths name the same file, whatever their spelling (relative, "..", symlinks, hard
// links). A path that does not exist is compared by its normalised absolute form.
[[nodiscard]] bool same_file(const std::string& a, const std::string& b);

// Throws OutputRefused (one line) when `out` is one of `inputs`, or exists and `force` is false.
// `what` names the option ("-o", "--to") in the message. Makes a missing parent folder of `out`
// (OutputRefused when it cannot).
void check_output(const std::string& out, const std::vector<std::string>& inputs, bool force,
                  const std::string& what);

}  // namespace ion
