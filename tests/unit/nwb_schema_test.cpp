// The NWB schema an export caches (tools/interchange nwb_schema.h): YAML read as PyYAML reads it
// (the JSON pynwb caches is json.dumps of that), and the schema found where pynwb ships it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "ion/interchange/nwb_schema.h"

namespace ion::test {
namespace {
namespace fs = std::filesystem;
using interchange::find_nwb_schema;
using interchange::yaml_to_json;

TEST(NwbSchema, YamlScalarsAreTypedAsPyYamlTypesThem) {
  // Plain scalars resolve (YAML 1.1: yes/on are booleans, 1e5 without a sign is a string);
  // quoted ones stay strings; order is kept.
  const YAML::Node n = YAML::Load(
      "{a: 1, b: '1', c: 1.5, d: yes, e: null, f: ~, g: [null, 3, -2], h: \"x\\\"y\", i: 1e5, j: 1.0e+5, "
      "k: .inf, l: 0x1F, m: text, n: False, o: .5, p: 017, q: \"\"}");
  EXPECT_EQ(yaml_to_json(n),
            R"({"a":1,"b":"1","c":1.5,"d":true,"e":null,"f":null,"g":[null,3,-2],"h":"x\"y","i":"1e5",)"
            R"("j":1e+05,"k":Infinity,"l":31,"m":"text","n":false,"o":0.5,"p":15,"q":""})");
  EXPECT_EQ(yaml_to_json(YAML::Load("doc: |\n  two\n  lines\n")), R"({"doc":"two\nlines\n"})");
}

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

TEST(NwbSchema, FoundWhereAnInstalledPynwbShipsItAndCachedAsPynwbCachesIt) {
  const fs::path root = fs::temp_directory_path() / "ion-nwb-schema-test";
  fs::remove_all(root);
  const fs::path schema = root / "site-packages/pynwb/nwb-schema";
  write(schema / "core/nwb.namespace.yaml",
        "namespaces:\n- name: core\n  doc: NWB namespace\n  version: 2.6.0\n  schema:\n  - namespace: hdmf-common\n"
        "  - doc: base types\n    source: nwb.base.yaml\n    title: Base\n");
  write(schema / "core/nwb.base.yaml", "groups:\n- neurodata_type_def: TimeSeries\n  quantity: '?'\n  shape: [null, 3]\n");
  write(schema / "hdmf-common-schema/common/namespace.yaml",
        "namespaces:\n- name: hdmf-common\n  version: 1.8.0\n  schema:\n  - source: base.yaml\n"
        "- name: hdmf-experimental\n  version: 0.5.0\n  schema:\n  - namespace: hdmf-common\n");
  write(schema / "hdmf-common-schema/common/base.yaml", "datasets:\n- data_type_def: Data\n");
  std::string why;
  const auto s = find_nwb_schema({(root / "site-packages/pynwb").string()}, &why);
  ASSERT_TRUE(s.has_value()) << why;
  EXPECT_EQ(s->core_version, "2.6.0");
  ASSERT_EQ(s->namespaces.size(), 2U);
  EXPECT_EQ(s->namespaces[0].name, "core");
  EXPECT_EQ(s->namespaces[1].name, "hdmf-common");
  EXPECT_EQ(s->namespaces[1].version, "1.8.0");
  // The namespace entry lists its sources without .yaml (what the reader looks up), nothing of
  // the other namespaces in the same file; each source is its own dataset.
  ASSERT_EQ(s->namespaces[0].files.size(), 2U);
  EXPECT_EQ(s->namespaces[0].files[0].first, "namespace");
  EXPECT_EQ(s->namespaces[0].files[0].second,
            R"({"namespaces":[{"name":"core","doc":"NWB namespace","version":"2.6.0","schema":[{"namespace":"hdmf-common"},{"source":"nwb.base"}]}]})");
  EXPECT_EQ(s->namespaces[0].files[1].first, "nwb.base");
  EXPECT_EQ(s->namespaces[0].files[1].second, R"({"groups":[{"neurodata_type_def":"TimeSeries","quantity":"?","shape":[null,3]}]})");
  EXPECT_EQ(s->namespaces[1].files[0].second.find("hdmf-experimental"), std::string::npos);

  // Older than the layout IoN writes: refused, and said why.
  write(schema / "core/nwb.namespace.yaml",
        "namespaces:\n- name: core\n  version: 2.2.0\n  schema:\n  - source: nwb.base.yaml\n");
  EXPECT_FALSE(find_nwb_schema({schema.string()}, &why).has_value());
  EXPECT_NE(why.find("older than the 2.5.0"), std::string::npos) << why;
  // Nothing there.
  EXPECT_FALSE(find_nwb_schema({(root / "nowhere").string()}, &why).has_value());
  EXPECT_NE(why.find("no nwb.namespace.yaml under"), std::string::npos) << why;
  fs::remove_all(root);
}

}  // namespace
}  // namespace ion::test
