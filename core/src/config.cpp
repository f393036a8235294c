#include "ion/core/config.h"

#include <charconv>
#include <cmath>
#include <filesystem>
#include <sstream>

namespace ion {

std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) != 0 ||
                             text[i] == '.')) {
    ++i;
  }
  if (i == 0 || i == text.size()) return std::nullopt;  // no number, or no unit
  double value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + i, value);
  if (ec != std::errc{} || ptr != text.data() + i) return std::nullopt;
  std::string_view unit = text.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  double scale = 0;
  if (unit == "ns") scale = 1;
  else if (unit == "us" || unit == "µs") scale = 1e3;
  else if (unit == "ms") scale = 1e6;
  else if (unit == "s") scale = 1e9;
  else if (unit == "min") scale = 60e9;
  else return std::nullopt;
  const double ns = value * scale;
  if (!std::isfinite(ns) || ns > 9.2e18) return std::nullopt;
  return std::chrono::nanoseconds(static_cast<int64_t>(std::llround(ns)));
}

ConfigNode::ConfigNode(YAML::Node node, std::shared_ptr<const std::string> file, std::string path)
    : node_(std::move(node)), file_(std::move(file)), path_(std::move(path)) {}

ConfigNode ConfigNode::load_file(const std::string& path) {
  auto file = std::make_shared<const std::string>(path);
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw ConfigError(path + ": cannot open config file");
  } catch (const YAML::Exception& e) {
    throw ConfigError(path + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
  if (!root.IsMap()) throw ConfigError(path + ": expected a YAML mapping at the top level");
  return {root, file, ""};
}

ConfigNode ConfigNode::parse(const std::string& text, const std::string& name) {
  auto file = std::make_shared<const std::string>(name);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(name + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
  if (!root.IsMap()) throw ConfigError(name + ": expected a YAML mapping at the top level");
  return {root, file, ""};
}

std::string ConfigNode::key_path(std::string_view key) const {
  if (path_.empty()) return std::string(key);
  if (key.empty()) return path_;
  return path_ + "." + std::string(key);
}

YAML::Node ConfigNode::get(std::string_view key) const {
  // operator[] on a const node never inserts.
  const YAML::Node& n = node_;
  if (!n.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  YAML::Node child = n[std::string(key)];
  // A missing key is an invalid node that throws on any question but IsDefined().
  return child.IsDefined() ? child : YAML::Node(YAML::NodeType::Undefined);
}

std::string ConfigNode::where(std::string_view key) const {
  // yaml-cpp nodes have reference semantics: assigning to a missing one throws, so only read.
  YAML::Mark mark = node_.Mark();
  if (!key.empty()) {
    const YAML::Node child = get(key);
    if (child.IsDefined()) mark = child.Mark();
  }
  std::ostringstream s;
  s << *file_;
  if (!mark.is_null()) s << ':' << mark.line + 1;
  const std::string kp = key_path(key);
  if (!kp.empty()) s << ": key '" << kp << "'";
  return s.str();
}

void ConfigNode::fail(std::string_view key, std::string_view expected) const {
  std::string got;
  const YAML::Node n = key.empty() ? node_ : get(key);
  if (!n.IsDefined()) {
    got = "nothing (the key is missing)";
  } else if (n.IsScalar()) {
    got = "'" + n.Scalar() + "'";
  } else if (n.IsSequence()) {
    got = "a list";
  } else if (n.IsMap()) {
    got = "a mapping";
  } else {
    got = "null";
  }
  throw ConfigError(where(key) + ": expected " + std::string(expected) + ", got " + got);
}

bool ConfigNode::has(std::string_view key) const { return get(key).IsDefined(); }

ConfigNode ConfigNode::child(std::string_view key) const {
  const YAML::Node n = get(key);
  if (!n.IsDefined() || !n.IsMap()) fail(key, "a mapping");
  return {n, file_, key_path(key)};
}

std::optional<ConfigNode> ConfigNode::find_child(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return child(key);
}

std::string ConfigNode::string(std::string_view key) const {
  const YAML::Node n = get(key);
  if (!n.IsDefined() || !n.IsScalar()) fail(key, "a string");
  return n.Scalar();
}

std::string ConfigNode::string(std::string_view key, std::string_view fallback) const {
  return has(key) ? string(key) : std::string(fallback);
}

int64_t ConfigNode::integer(std::string_view key, int64_t lo, int64_t hi) const {
  const YAML::Node n = get(key);
  const std::string expected =
      "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  if (!n.IsDefined() || !n.IsScalar()) fail(key, expected);
  const std::string& s = n.Scalar();
  int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || ptr != s.data() + s.size() || v < lo || v > hi) fail(key, expected);
  return v;
}

int64_t ConfigNode::integer(std::string_view key, int64_t fallback, int64_t lo, int64_t hi) const {
  return has(key) ? integer(key, lo, hi) : fallback;
}

double ConfigNode::number(std::string_view key, double fallback, double lo, double hi) const {
  if (!has(key)) return fallback;
  const YAML::Node n = get(key);
  std::ostringstream e;
  e << "a number in [" << lo << ", " << hi << "]";
  if (!n.IsScalar()) fail(key, e.str());
  const std::string& s = n.Scalar();
  double v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || ptr != s.data() + s.size() || !std::isfinite(v) || v < lo || v > hi) {
    fail(key, e.str());
  }
  return v;
}

bool ConfigNode::boolean(std::string_view key, bool fallback) const {
  if (!has(key)) return fallback;
  const YAML::Node n = get(key);
  if (n.IsScalar()) {
    const std::string& s = n.Scalar();
    if (s == "true" || s == "yes" || s == "on") return true;
    if (s == "false" || s == "no" || s == "off") return false;
  }
  fail(key, "true or false");
}

std::chrono::nanoseconds ConfigNode::duration(std::string_view key,
                                              std::chrono::nanoseconds fallback,
                                              std::chrono::nanoseconds lo,
                                              std::chrono::nanoseconds hi) const {
  if (!has(key)) return fallback;
  const YAML::Node n = get(key);
  const std::string expected = "a duration with a unit (ns, us, ms, s, min) between " +
                               std::to_string(lo.count()) + "ns and " +
                               std::to_string(hi.count()) + "ns, e.g. 20ms";
  if (!n.IsScalar()) fail(key, expected);
  const auto d = parse_duration(n.Scalar());
  if (!d || *d < lo || *d > hi) fail(key, expected);
  return *d;
}

void ConfigNode::only_keys(std::initializer_list<std::string_view> known) const {
  for (const auto& kv : node_) {
    const std::string k = kv.first.Scalar();
    bool ok = false;
    for (auto kn : known) ok = ok || k == kn;
    if (!ok) {
      std::string list;
      for (auto kn : known) list += (list.empty() ? "" : ", ") + std::string(kn);
      std::ostringstream s;
      s << *file_;
      if (!kv.first.Mark().is_null()) s << ':' << kv.first.Mark().line + 1;
      s << ": key '" << key_path(k) << "': unknown key (known here: " << list << ")";
      throw ConfigError(s.str());
    }
  }
}

std::string ConfigNode::resolve_path(const std::string& p) const {
  const std::filesystem::path path(p);
  if (path.is_absolute()) return p;
  return (std::filesystem::path(*file_).parent_path() / path).lexically_normal().string();
}

}  // namespace ion
