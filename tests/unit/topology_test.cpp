// Routing-table compilation: fan-out, fan-in, wildcards, ranges; unknown names and impossible
// mappings are refused at start-up with the file and the connection named.
#include <gtest/gtest.h>

#include "ion/broker/topology.h"

namespace ion {
namespace {

Topology parse(const std::string& yaml) {
  return load_topology(ConfigNode::parse(yaml, "topo.yaml"));
}

std::string compile_error(const std::string& yaml) {
  try {
    (void)RoutingTable::compile(parse(yaml));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

const char* kNodes = R"(
nodes:
  mea:  {kind: mea, channels: 60, ports: 60}
  chip: {kind: chip, channels: 256, ports: 256}
  syn:  {kind: synapse, channels: 4, ports: 4}
)";

// A recording keeps the topology as to_yaml wrote it; a network without connections (a recorder
// and sources only) wrote "connections:" alone, which reads back as null and was refused, so the
// recording's sources went undescribed.
TEST(Topology, ANetworkWithoutConnectionsReadsBackAsWritten) {
  Topology t;
  t.nodes = {{"west", "mea", 60, 0}, {"east", "mea", 60, 60}};
  const Topology back = load_topology(ConfigNode::parse(to_yaml(t), "round trip"));
  ASSERT_EQ(back.nodes.size(), 2U);
  EXPECT_EQ(back.nodes[1].name, "east");
  EXPECT_EQ(back.nodes[1].ports, 60U);
  EXPECT_TRUE(back.connections.empty());
}

TEST(Topology, WildcardMapsChannelToSamePort) {
  const auto rt = RoutingTable::compile(parse(std::string(kNodes) + R"(
connections:
  - {from: "mea:*", to: "chip:*", delay: 20ms}
)"));
  for (uint32_t ch = 0; ch < 60; ++ch) {
    const auto r = rt.routes(0, ch);
    ASSERT_EQ(r.size(), 1U);
    EXPECT_EQ(r[0].target_node, 1U);
    EXPECT_EQ(r[0].port, ch);
    EXPECT_EQ(r[0].delay_ns, 20'000'000);
  }
  EXPECT_TRUE(rt.complete(0, 1));
  EXPECT_FALSE(rt.complete(0, 2));
  EXPECT_TRUE(rt.routes(1, 0).empty());
}

TEST(Topology, FanOutToSeveralTargetsWithTheirOwnDelays) {
  const auto rt = RoutingTable::compile(parse(std::string(kNodes) + R"(
connections:
  - {from: "mea:5", to: ["chip:10", "syn:0-3"], delay: 1500us}
)"));
  const auto r = rt.routes(0, 5);
  ASSERT_EQ(r.size(), 5U);  // chip:10 and syn:0..3
  EXPECT_EQ(r[0].target_node, 1U);
  EXPECT_EQ(r[0].port, 10U);
  for (size_t i = 1; i < 5; ++i) {
    EXPECT_EQ(r[i].target_node, 2U);
    EXPECT_EQ(r[i].port, i - 1);
    EXPECT_EQ(r[i].delay_ns, 1'500'000);
  }
  EXPECT_TRUE(rt.routes(0, 4).empty());
  EXPECT_FALSE(rt.complete(0, 1));
}

TEST(Topology, FanInOntoOnePort) {
  const auto rt = RoutingTable::compile(parse(std::string(kNodes) + R"(
connections:
  - {from: "mea:0-9", to: "syn:2", delay: 5ms}
  - {from: "chip:100", to: "syn:2", delay: 7ms}
)"));
  for (uint32_t ch = 0; ch < 10; ++ch) {
    ASSERT_EQ(rt.routes(0, ch).size(), 1U);
    EXPECT_EQ(rt.routes(0, ch)[0].port, 2U);
  }
  ASSERT_EQ(rt.routes(1, 100).size(), 1U);
  EXPECT_EQ(rt.routes(1, 100)[0].delay_ns, 7'000'000);
}

TEST(Topology, ElementWiseRanges) {
  const auto rt = RoutingTable::compile(parse(std::string(kNodes) + R"(
connections:
  - {from: "chip:10-13", to: "syn:0-3", delay: 1ms}
)"));
  for (uint32_t i = 0; i < 4; ++i) EXPECT_EQ(rt.routes(1, 10 + i)[0].port, i);
}

TEST(Topology, CompleteNeedsEveryChannelOnceWithOneDelay) {
  const auto two_delays = RoutingTable::compile(parse(std::string(kNodes) + R"(
connections:
  - {from: "syn:0-1", to: "mea:0-1", delay: 1ms}
  - {from: "syn:2-3", to: "mea:2-3", delay: 2ms}
)"));
  EXPECT_FALSE(two_delays.complete(2, 0));
  const auto twice = RoutingTable::compile(parse(std::string(kNodes) + R"(
connections:
  - {from: "syn:*", to: ["mea:*", "mea:40-43"], delay: 1ms}
)"));
  EXPECT_FALSE(twice.complete(2, 0));
  const auto once = RoutingTable::compile(parse(std::string(kNodes) + R"(
connections:
  - {from: "syn:0-1", to: "mea:0-1", delay: 1ms}
  - {from: "syn:2-3", to: "mea:2-3", delay: 1ms}
)"));
  EXPECT_TRUE(once.complete(2, 0));
}

TEST(Topology, UnknownNodeIsRefusedWithTheKnownNames) {
  const std::string e = compile_error(std::string(kNodes) + R"(
connections:
  - {from: "zurich:*", to: "mea:*", delay: 1ms}
)");
  EXPECT_NE(e.find("unknown node 'zurich'"), std::string::npos) << e;
  EXPECT_NE(e.find("chip, mea, syn"), std::string::npos) << e;
  EXPECT_NE(e.find("topo.yaml"), std::string::npos) << e;
}

TEST(Topology, ChannelsAndPortsOutsideTheNodeAreRefused) {
  EXPECT_NE(compile_error(std::string(kNodes) + R"(
connections:
  - {from: "mea:60", to: "chip:0", delay: 1ms}
)").find("outside its 60 channels"),
            std::string::npos);
  EXPECT_NE(compile_error(std::string(kNodes) + R"(
connections:
  - {from: "chip:*", to: "mea:*", delay: 1ms}
)").find("outside its 60 ports"),
            std::string::npos);
}

TEST(Topology, MismatchedRangesAreRefused) {
  EXPECT_NE(compile_error(std::string(kNodes) + R"(
connections:
  - {from: "mea:0-3", to: "chip:0-2", delay: 1ms}
)").find("cannot map"),
            std::string::npos);
}

TEST(Topology, DuplicateNodeIsRefused) {
  Topology t;
  t.nodes = {{"a", "x", 1, 1}, {"a", "x", 1, 1}};
  EXPECT_THROW((void)RoutingTable::compile(t), ConfigError);
}

TEST(Topology, DelayIsRequiredHasAUnitAndIsNotAutoYet) {
  const auto err = [](const std::string& conn) {
    try {
      (void)parse(std::string(kNodes) + "connections:\n  - " + conn + "\n");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(err(R"({from: "mea:0", to: "chip:0"})").find("every connection has a delay"),
            std::string::npos);
  EXPECT_NE(err(R"({from: "mea:0", to: "chip:0", delay: 20})").find("with a unit"),
            std::string::npos);
  EXPECT_NE(err(R"({from: "mea:0", to: "chip:0", delay: 1ms, auto_margin: 2ms})")
                .find("only applies with delay: auto"),
            std::string::npos);
  EXPECT_NE(err(R"({from: "mea:0", to: "chip:0", delay: 1ms, dealy: 2ms})").find("unknown key"),
            std::string::npos);
  // Found by fuzz_config: a connection without `to` threw yaml-cpp's InvalidNode, not a
  // ConfigError naming the key.
  EXPECT_NE(err(R"({from: "mea:0", delay: 1ms})").find("key 'connections[0].to'"), std::string::npos)
      << err(R"({from: "mea:0", delay: 1ms})");
}

TEST(Topology, AutoDelayStartsFromItsInitialValueWithinBounds) {
  const Topology t = parse(std::string(kNodes) + R"(
connections:
  - {from: "mea:*", to: "chip:*", delay: auto, auto_initial: 50ms, auto_margin: 3ms, auto_max: 200ms}
)");
  ASSERT_EQ(t.connections.size(), 1U);
  EXPECT_TRUE(t.connections[0].auto_delay);
  EXPECT_EQ(t.connections[0].delay_ns, 50'000'000);
  EXPECT_EQ(t.connections[0].auto_options.margin_ns, 3'000'000);
  EXPECT_EQ(t.connections[0].auto_options.max_ns, 200'000'000);
  const auto rt = RoutingTable::compile(t);
  EXPECT_EQ(rt.routes(0, 7)[0].connection, 0U);
  EXPECT_TRUE(rt.complete(0, 1));  // one connection: its delay moves as one
}

TEST(Topology, LatePolicyPerConnection) {
  const auto rt = RoutingTable::compile(parse(std::string(kNodes) + R"(
connections:
  - {from: "mea:0", to: "chip:0", delay: 1ms, late: drop}
  - {from: "mea:1", to: "chip:1", delay: 1ms}
)"));
  EXPECT_EQ(rt.routes(0, 0)[0].late_policy, LatePolicy::drop);
  EXPECT_EQ(rt.routes(0, 1)[0].late_policy, LatePolicy::deliver_flagged);
  try {
    (void)parse(std::string(kNodes) +
                "connections:\n  - {from: 'mea:0', to: 'chip:0', delay: 1ms, late: maybe}\n");
    ADD_FAILURE() << "late: maybe accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("expected deliver_flagged or drop, got 'maybe'"),
              std::string::npos)
        << e.what();
  }
}

TEST(Topology, EndpointSyntax) {
  EXPECT_TRUE(parse_endpoint("mea:*", "x").wildcard);
  const auto r = parse_endpoint("chip:3-9", "x");
  EXPECT_EQ(r.first, 3U);
  EXPECT_EQ(r.last, 9U);
  EXPECT_THROW((void)parse_endpoint("chip", "x"), ConfigError);
  EXPECT_THROW((void)parse_endpoint("chip:9-3", "x"), ConfigError);
  EXPECT_THROW((void)parse_endpoint("chip:x", "x"), ConfigError);
  EXPECT_THROW((void)parse_endpoint("ch ip:1", "x"), ConfigError);
  EXPECT_THROW((void)parse_endpoint("chip:-1", "x"), ConfigError);
}

}  // namespace
}  // namespace ion
