#pragma once
// `ion keygen` and the key options of the tools that talk to a broker (status, record, replay).
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

// `--key FILE --broker-key FILE|KEY`: both or neither. Throws SecurityError otherwise, or when a
// file does not load.
[[nodiscard]] std::optional<CurveClientKeys> client_keys(const std::string& key_file,
                                                         const std::string& broker_key);

}  // namespace ion
