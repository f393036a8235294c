#pragma once
// YAML configuration access whose every error names the file, the line, the key and what was
// expected. Config errors are exceptions: they only happen at start-up.
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ion {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Parses "20ms", "1.5ms", "250us", "100ns", "2s", "1min". A bare number has no unit and is
// refused. Returns nullopt when the text is not a duration.
[[nodiscard]] std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text);

// A mapping inside a YAML file, with the path of keys that led to it.
class ConfigNode {
 public:
  static ConfigNode load_file(const std::string& path);
  static ConfigNode parse(const std::string& text, const std::string& name);

  [[nodiscard]] const std::string& file() const noexcept { return *file_; }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] const YAML::Node& yaml() const noexcept { return node_; }

  [[nodiscard]] bool has(std::string_view key) const;
  // A required mapping child.
  [[nodiscard]] ConfigNode child(std::string_view key) const;
  [[nodiscard]] std::optional<ConfigNode> find_child(std::string_view key) const;

  [[nodiscard]] std::string string(std::string_view key) const;
  [[nodiscard]] std::string string(std::string_view key, std::string_view fallback) const;
  [[nodiscard]] int64_t integer(std::string_view key, int64_t lo, int64_t hi) const;
  [[nodiscard]] int64_t integer(std::string_view key, int64_t fallback, int64_t lo,
                                int64_t hi) const;
  [[nodiscard]] double number(std::string_view key, double fallback, double lo, double hi) const;
  [[nodiscard]] bool boolean(std::string_view key, bool fallback) const;
  [[nodiscard]] std::chrono::nanoseconds duration(std::string_view key,
                                                  std::chrono::nanoseconds fallback,
                                                  std::chrono::nanoseconds lo,
                                                  std::chrono::nanoseconds hi) const;

  // Refuses keys not in `known`, so that a typo is an error and not a silently ignored setting.
  void only_keys(std::initializer_list<std::string_view> known) const;

  // "file:line: key 'a.b'" for messages about this node or one of its keys.
  [[nodiscard]] std::string where(std::string_view key = {}) const;
  [[noreturn]] void fail(std::string_view key, std::string_view expected) const;

  // Resolves a path written in this file relative to the file's folder.
  [[nodiscard]] std::string resolve_path(const std::string& p) const;

  ConfigNode(YAML::Node node, std::shared_ptr<const std::string> file, std::string path);

 private:
  [[nodiscard]] std::string key_path(std::string_view key) const;
  [[nodiscard]] YAML::Node get(std::string_view key) const;
  YAML::Node node_;
  std::shared_ptr<const std::string> file_;
  std::string path_;
};

}  // namespace ion
