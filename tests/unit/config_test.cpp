// Config errors stop start-up with one clear line naming the file, the key and the expectation.
#include <gtest/gtest.h>

#include <fstream>

#include "ion/broker/broker.h"
#include "ion/core/config.h"
#include "ion/core/json.h"

namespace ion {
namespace {

using std::chrono::nanoseconds;

TEST(Duration, ParsesUnits) {
  EXPECT_EQ(parse_duration("20ms"), nanoseconds(20'000'000));
  EXPECT_EQ(parse_duration("1.5ms"), nanoseconds(1'500'000));
  EXPECT_EQ(parse_duration("250us"), nanoseconds(250'000));
  EXPECT_EQ(parse_duration("100ns"), nanoseconds(100));
  EXPECT_EQ(parse_duration("2s"), nanoseconds(2'000'000'000));
  EXPECT_EQ(parse_duration("1min"), nanoseconds(60'000'000'000));
  EXPECT_EQ(parse_duration(" 3 ms "), nanoseconds(3'000'000));
}

TEST(Duration, RefusesBareNumbersAndUnknownUnits) {
  EXPECT_FALSE(parse_duration("20"));
  EXPECT_FALSE(parse_duration("ms"));
  EXPECT_FALSE(parse_duration("20 parsecs"));
  EXPECT_FALSE(parse_duration("-5ms"));
  EXPECT_FALSE(parse_duration("1e30s"));
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(Config, ErrorNamesFileLineKeyAndExpectation) {
  const ConfigNode root = ConfigNode::parse("a:\n  b: 1\n  rate_hz: fast\n", "lab.yaml");
  const std::string e =
      error_of([&] { (void)root.child("a").number("rate_hz", 1.0, 0.0, 100.0); });
  EXPECT_EQ(e, "lab.yaml:3: key 'a.rate_hz': expected a number in [0, 100], got 'fast'");
}

TEST(Config, MissingRequiredKey) {
  const ConfigNode root = ConfigNode::parse("a: {}\n", "lab.yaml");
  const std::string e = error_of([&] { (void)root.child("a").string("name"); });
  EXPECT_NE(e.find("key 'a.name': expected a string, got nothing (the key is missing)"),
            std::string::npos)
      << e;
}

TEST(Config, IntegerRangeAndType) {
  const ConfigNode root = ConfigNode::parse("n: 70000\nm: 1.5\n", "x.yaml");
  EXPECT_NE(error_of([&] { (void)root.integer("n", 0, 0, 65535); }).find("[0, 65535]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { (void)root.integer("m", 0, 0, 10); }).find("got '1.5'"),
            std::string::npos);
  EXPECT_EQ(root.integer("absent", 7, 0, 10), 7);
}

TEST(Config, UnknownKeysAreRefused) {
  const ConfigNode root = ConfigNode::parse("listen: x\nlisen: y\n", "b.yaml");
  const std::string e = error_of([&] { root.only_keys({"listen"}); });
  EXPECT_NE(e.find("b.yaml:2: key 'lisen': unknown key"), std::string::npos) << e;
}

TEST(Config, InvalidYamlAndMissingFile) {
  EXPECT_NE(error_of([] { (void)ConfigNode::parse("a: [1, 2\n", "bad.yaml"); })
                .find("bad.yaml:"),
            std::string::npos);
  EXPECT_NE(error_of([] { (void)ConfigNode::load_file("/nonexistent/ion.yaml"); })
                .find("/nonexistent/ion.yaml: cannot open"),
            std::string::npos);
}

TEST(Config, BrokerConfigResolvesTopologyBesideTheFile) {
  const std::string dir = ::testing::TempDir();
  {
    std::ofstream(dir + "/t.yaml") << "nodes:\n  a: {channels: 2}\n  b: {ports: 2}\n"
                                      "connections:\n  - {from: 'a:*', to: 'b:*', delay: 3ms}\n";
    std::ofstream(dir + "/b.yaml") << "broker:\n  listen: tcp://127.0.0.1:0\n  topology: t.yaml\n"
                                      "  heartbeat_interval: 100ms\n";
  }
  const BrokerOptions o = BrokerOptions::from_file(dir + "/b.yaml");
  EXPECT_EQ(o.topology.nodes.size(), 2U);
  EXPECT_EQ(o.heartbeat_interval, std::chrono::milliseconds(100));
  {
    std::ofstream(dir + "/c.yaml") << "broker:\n  topology: t.yaml\n  heartbeat_timeout: 50ms\n";
  }
  const std::string e = error_of([&] { (void)BrokerOptions::from_file(dir + "/c.yaml"); });
  EXPECT_NE(e.find("key 'broker.heartbeat_timeout': expected a duration longer than"),
            std::string::npos)
      << e;
}

// Names and paths reach hand-written JSON (status, inspect, demo): it must stay valid JSON.
TEST(Json, StringsAreEscapedForJson) {
  EXPECT_EQ(json_string("padova"), "\"padova\"");
  EXPECT_EQ(json_escape("a\"b\\c"), "a\\\"b\\\\c");
  EXPECT_EQ(json_escape("line\nnext\tx"), "line\\nnext\\tx");
  EXPECT_EQ(json_escape(std::string("\x01\x1f", 2)), "\\u0001\\u001f");
  EXPECT_EQ(json_escape("µs ±"), "µs ±");  // UTF-8 passes through
}

}  // namespace
}  // namespace ion
