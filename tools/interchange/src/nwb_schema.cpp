// The NWB schema cached in exported files (nwb_schema.h).
#include "ion/interchange/nwb_schema.h"

#include "ion/core/json.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <sstream>

namespace ion::interchange {
namespace fs = std::filesystem;

namespace {

// PyYAML's (YAML 1.1) implicit resolvers for a plain scalar.
std::string plain_scalar_json(const std::string& v) {
  static const std::regex null_re("~|null|Null|NULL|");
  static const std::regex true_re("yes|Yes|YES|true|True|TRUE|on|On|ON");
  static const std::regex false_re("no|No|NO|false|False|FALSE|off|Off|OFF");
  static const std::regex dec_re("[-+]?(0|[1-9][0-9_]*)");
  static const std::regex oct_re("[-+]?0[0-7_]+");
  static const std::regex hex_re("[-+]?0x[0-9a-fA-F_]+");
  static const std::regex float_re("[-+]?([0-9][0-9_]*)?\\.[0-9_]*([eE][-+][0-9]+)?");
  static const std::regex inf_re("[-+]?\\.(inf|Inf|INF)");
  static const std::regex nan_re("\\.(nan|NaN|NAN)");
  if (std::regex_match(v, null_re)) return "null";
  if (std::regex_match(v, true_re)) return "true";
  if (std::regex_match(v, false_re)) return "false";
  std::string digits;
  for (const char c : v) {
    if (c != '_') digits += c;
  }
  if (std::regex_match(v, dec_re)) {
    return digits[0] == '+' ? digits.substr(1) : digits;
  }
  if (std::regex_match(v, oct_re) || std::regex_match(v, hex_re)) {
    const bool neg = digits[0] == '-';
    const std::string body = digits[0] == '-' || digits[0] == '+' ? digits.substr(1) : digits;
    const long long x = std::stoll(body, nullptr, body.starts_with("0x") ? 16 : 8);
    return std::to_string(neg ? -x : x);
  }
  if (std::regex_match(v, float_re) && v != "." && v != "+." && v != "-.") {
    char b[40];
    const auto r = std::to_chars(b, b + sizeof b, std::strtod(digits.c_str(), nullptr));  // shortest exact
    std::string t(b, r.ptr);
    if (t.find_first_of(".e") == std::string::npos) t += ".0";
    return t;
  }
  if (std::regex_match(v, inf_re)) return v[0] == '-' ? "-Infinity" : "Infinity";
  if (std::regex_match(v, nan_re)) return "NaN";
  return json_string(v);
}

void to_json(const YAML::Node& n, std::string& o) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined: o += "null"; return;
    case YAML::NodeType::Scalar:
      // "?" marks a plain scalar; a quoted one ("!") or an explicit !!str is a string.
      o += n.Tag() == "?" ? plain_scalar_json(n.Scalar()) : json_string(n.Scalar());
      return;
    case YAML::NodeType::Sequence: {
      o += '[';
      bool first = true;
      for (const auto& x : n) {
        if (!first) o += ',';
        first = false;
        to_json(x, o);
      }
      o += ']';
      return;
    }
    case YAML::NodeType::Map: {
      o += '{';
      bool first = true;
      for (const auto& kv : n) {
        if (!first) o += ',';
        first = false;
        o += json_string(kv.first.Scalar());
        o += ':';
        to_json(kv.second, o);
      }
      o += '}';
      return;
    }
  }
}

// "2.11.0" -> {2, 11, 0}; missing parts are 0.
std::vector<int> version_parts(const std::string& v) {
  std::vector<int> p;
  std::stringstream s(v);
  for (std::string x; std::getline(s, x, '.');) p.push_back(std::atoi(x.c_str()));
  while (p.size() < 3) p.push_back(0);
  return p;
}

// The namespace named `name` in a namespace file, or an undefined node.
YAML::Node namespace_named(const YAML::Node& file, const std::string& name) {
  const YAML::Node list = file["namespaces"];
  if (!list || !list.IsSequence()) return {};
  for (const auto& ns : list) {
    if (ns["name"] && ns["name"].Scalar() == name) return ns;
  }
  return {};
}

// One namespace as pynwb caches it: the namespace entry (its schema list reduced to sources
// without .yaml and the namespaces it includes) and every source file as JSON.
NwbSpecNamespace load_namespace(const fs::path& file, const std::string& name) {
  const YAML::Node ns = namespace_named(YAML::LoadFile(file.string()), name);
  if (!ns) throw std::runtime_error(file.string() + " has no namespace '" + name + "'");
  NwbSpecNamespace out;
  out.name = name;
  out.version = ns["version"].Scalar();
  YAML::Node entry = YAML::Clone(ns);
  YAML::Node schema(YAML::NodeType::Sequence);
  for (const auto& s : ns["schema"]) {
    YAML::Node e(YAML::NodeType::Map);
    if (s["namespace"]) {
      e["namespace"] = s["namespace"].Scalar();
    } else {
      std::string source = s["source"].Scalar();
      const fs::path path = file.parent_path() / source;
      if (source.ends_with(".yaml")) source.resize(source.size() - 5);
      e["source"] = source;
      out.files.emplace_back(source, yaml_to_json(YAML::LoadFile(path.string())));
    }
    schema.push_back(e);
  }
  entry["schema"] = schema;
  YAML::Node wrapper(YAML::NodeType::Map);
  YAML::Node list(YAML::NodeType::Sequence);
  list.push_back(entry);
  wrapper["namespaces"] = list;
  out.files.insert(out.files.begin(), {"namespace", yaml_to_json(wrapper)});
  return out;
}

// Files named `name` under `root`, at most `depth` folders down (site-packages is wide).
void find_files(const fs::path& root, const std::string& name, int depth, std::vector<fs::path>& found) {
  std::error_code ec;
  if (depth < 0 || !fs::is_directory(root, ec)) return;
  for (fs::directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end; !ec && it != end;
       it.increment(ec)) {
    const fs::path& p = it->path();
    if (it->is_directory(ec)) {
      find_files(p, name, depth - 1, found);
    } else if (p.filename() == name) {
      found.push_back(p);
    }
  }
}

}  // namespace

std::string yaml_to_json(const YAML::Node& node) {
  std::string o;
  to_json(node, o);
  return o;
}

std::vector<std::string> default_nwb_schema_dirs() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("ION_NWB_SCHEMA")) {
    std::stringstream s(env);
    for (std::string d; std::getline(s, d, ':');) {
      if (!d.empty()) dirs.push_back(d);
    }
  }
  std::vector<fs::path> libs;
  if (const char* venv = std::getenv("VIRTUAL_ENV")) libs.push_back(fs::path(venv) / "lib");
  if (const char* home = std::getenv("HOME")) libs.push_back(fs::path(home) / ".local/lib");
  libs.emplace_back("/usr/local/lib");
  libs.emplace_back("/usr/lib");
  std::error_code ec;
  for (const fs::path& lib : libs) {
    for (fs::directory_iterator it(lib, ec), end; !ec && it != end; it.increment(ec)) {
      if (!it->path().filename().string().starts_with("python3")) continue;
      for (const char* pkgs : {"site-packages", "dist-packages"}) {
        const fs::path p = it->path() / pkgs / "pynwb" / "nwb-schema";
        if (fs::is_directory(p, ec)) dirs.push_back(p.string());
      }
    }
  }
  return dirs;
}

std::optional<NwbSchema> find_nwb_schema(const std::vector<std::string>& dirs, std::string* why) {
  std::string reason = "no nwb.namespace.yaml under " + (dirs.empty() ? std::string("any folder searched") : "");
  for (size_t i = 0; i < dirs.size(); ++i) reason += (i ? ", " : "") + dirs[i];
  for (const std::string& dir : dirs) {
    std::vector<fs::path> cores;
    find_files(dir, "nwb.namespace.yaml", 4, cores);
    for (const fs::path& core_file : cores) {
      try {
        NwbSchema s;
        s.namespaces.push_back(load_namespace(core_file, "core"));
        s.core_version = s.namespaces[0].version;
        s.core_dir = core_file.parent_path().string();
        if (version_parts(s.core_version) < std::vector<int>{2, 5, 0}) {
          reason = core_file.string() + " is NWB " + s.core_version + ", older than the 2.5.0 IoN writes";
          continue;
        }
        // hdmf-common: beside core as pynwb ships it, else anywhere under the folders given.
        std::vector<fs::path> commons;
        find_files(core_file.parent_path().parent_path(), "namespace.yaml", 3, commons);
        for (const std::string& d : dirs) find_files(d, "namespace.yaml", 5, commons);
        for (const fs::path& c : commons) {
          try {
            if (!namespace_named(YAML::LoadFile(c.string()), "hdmf-common")) continue;
            s.namespaces.push_back(load_namespace(c, "hdmf-common"));
            break;
          } catch (const std::exception&) {
            continue;  // not a readable namespace file: keep looking
          }
        }
        if (s.namespaces.size() < 2) {
          reason = core_file.string() + " found, but no hdmf-common namespace.yaml beside it";
          continue;
        }
        return s;
      } catch (const std::exception& e) {
        reason = core_file.string() + ": " + e.what();
      }
    }
  }
  if (why) *why = reason;
  return std::nullopt;
}

}  // namespace ion::interchange
