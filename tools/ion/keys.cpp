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

std::optional<CurveClientKeys> client_keys(const std::string& key_file,
                                           const std::string& broker_key) {
  if (key_file.empty() && broker_key.empty()) return std::nullopt;
  if (key_file.empty() || broker_key.empty()) {
    throw SecurityError("--key and --broker-key go together: this peer's secret key file and the "
                        "broker's public key");
  }
  require_curve("ion");
  const CurveKeyPair mine = load_secret_key(key_file);
  return CurveClientKeys{mine.public_z85, mine.secret_z85, load_public_key(broker_key), mine.name};
}

}  // namespace ion
