#pragma once
// `ion keygen`.
#include <iosfwd>
#include <optional>
#include <string>

#include "ion/core/security.h"

namespace ion {

struct KeygenOptions {
  std::string name;
  std::string dir = ".";
  bool force = false;  // replace existing files
};

// Writes DIR/NAME.key (0600) and DIR/NAME.pub and prints the allowlist line. 0 on success.
int run_keygen(const KeygenOptions& options, std::ostream& out);

}  // namespace ion
