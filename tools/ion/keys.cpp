#include "ion/keys.h"

#include <ostream>

namespace ion {

int run_keygen(const KeygenOptions& o, std::ostream& out) {
  const CurveKeyPair pair = generate_keypair(o.name);
  const KeyFiles files = write_keypair(pair, o.dir, o.force);
  out << "ion keygen: wrote " << files.secret_path << " (secret, mode 0600: keep it on "
      << o.name << "'s machine) and " << files.public_path << "\n"
      << "Add this line to the broker's allowlist:\n"
      << allowlist_line(pair) << "\n";
  return 0;
}

}  // namespace ion
