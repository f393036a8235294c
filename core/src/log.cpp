#include "ion/core/log.h"

#include <spdlog/spdlog.h>

#include <string>

namespace ion {

bool set_log_level(const char* level) noexcept {
  const auto l = spdlog::level::from_str(level);
  // from_str maps unknown names to "off"; tell the two apart.
  if (l == spdlog::level::off && std::string(level) != "off") return false;
  spdlog::set_level(l);
  return true;
}

}  // namespace ion
