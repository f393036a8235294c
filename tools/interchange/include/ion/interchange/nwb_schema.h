#pragma once
// The NWB schema an exported file caches in /specifications (as pynwb does), read from a copy on
// this machine: the `nwb-schema` folder an installed pynwb ships (core, and hdmf-common beside
// it). IoN does not ship the schema; without one, a file is written uncached and pynwb validates
// it against its own copy (and warns).
#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace ion::interchange {

struct NwbSpecNamespace {
  std::string name;     // core, hdmf-common
  std::string version;  // 2.11.0
  // (dataset name, JSON text): "namespace" and one per schema source, its name without .yaml.
  std::vector<std::pair<std::string, std::string>> files;
};

struct NwbSchema {
  std::vector<NwbSpecNamespace> namespaces;  // core first
  std::string core_version;
  std::string core_dir;  // where it was read
};

// Folders searched when none is given: $ION_NWB_SCHEMA (':'-separated), then an installed
// pynwb's nwb-schema under $VIRTUAL_ENV, ~/.local and the system's Python folders.
[[nodiscard]] std::vector<std::string> default_nwb_schema_dirs();

// The first usable schema under `dirs` (each searched a few levels deep for nwb.namespace.yaml,
// hdmf-common's namespace.yaml beside it or under `dirs`). Empty, with `why`, when there is none
// or it is older than 2.5.0 (the layout IoN writes). Never throws.
[[nodiscard]] std::optional<NwbSchema> find_nwb_schema(const std::vector<std::string>& dirs, std::string* why);

// A YAML document as JSON, scalars typed as PyYAML's safe loader types them (the JSON pynwb
// caches is json.dumps of what PyYAML read): plain null/~, booleans (true, yes, on ...), decimal,
// octal and hex integers, floats with a '.', .inf and .nan; quoted scalars stay strings.
[[nodiscard]] std::string yaml_to_json(const YAML::Node& node);

}  // namespace ion::interchange
