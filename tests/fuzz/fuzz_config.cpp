// Fuzz target for the config loader: any text as a YAML config file, read as a topology, a
// broker, a node and a driver config (generator, sink, MEA, chip, synapse, replay). Every refusal
// must be a ConfigError (file:line, key, expectation) or a SecurityError, never a crash, a hang
// or another exception; an accepted topology must compile, and its YAML must read back the same.
#include <cstdlib>
#include <string>
#include <vector>

#include "ion/broker/broker.h"
#include "ion/broker/topology.h"
#include "ion/core/config.h"
#include "ion/drivers/registry.h"
#include "ion/node/node.h"
#include "replay_main.h"

namespace {

std::string g_input;  // the input being tried, shown when it breaks a rule

template <class F>
void refused_cleanly(F&& f) {
  try {
    f();
  } catch (const ion::ConfigError&) {
  } catch (const ion::SecurityError&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "not a ConfigError: %s\ninput (%zu bytes, C escapes):\n", e.what(),
                 g_input.size());
    for (const unsigned char ch : g_input) {
      if (ch == '\n' || (ch >= 32 && ch < 127 && ch != '\\')) {
        std::fputc(ch, stderr);
      } else {
        std::fprintf(stderr, "\\x%02x", ch);
      }
    }
    std::fputc('\n', stderr);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  g_input = text;
  refused_cleanly([&] {
    const ion::ConfigNode root = ion::ConfigNode::parse(text, "fuzz.yaml");
    ion::Topology t;
    refused_cleanly([&] { t = ion::load_topology(root); });
    if (!t.nodes.empty()) {
      refused_cleanly([&] {
        // Bounded as the broker bounds it, so that a huge declared size is a refusal, not memory.
        size_t channels = 0;
        for (const auto& n : t.nodes) channels += std::max(n.channels, n.ports);
        if (channels > (1u << 16)) return;
        const auto table = ion::RoutingTable::compile(t);
        const ion::Topology back = ion::load_topology(ion::ConfigNode::parse(ion::to_yaml(t), "back.yaml"));
        if (back.nodes.size() != t.nodes.size() || back.connections.size() != t.connections.size()) {
          std::abort();
        }
        (void)table;
      });
    }
    refused_cleanly([&] {
      if (root.has("node")) (void)ion::NodeOptions::from_config(root);
    });
    refused_cleanly([&] {
      if (root.has("driver")) (void)ion::make_driver(root);
    });
  });
  return 0;
}

#ifndef ION_LIBFUZZER
int main() {
  const std::vector<std::string> corpus = {
      "nodes:\n  gen: {kind: generator, channels: 16}\n  sink: {kind: sink, ports: 16}\n"
      "connections:\n  - from: \"gen:*\"\n    to: [\"sink:*\"]\n    delay: 20ms\n",
      "nodes:\n  a: {kind: mea, channels: 60, ports: 60}\n  b: {kind: chip, channels: 256, ports: 256}\n"
      "connections:\n  - {from: 'a:55', to: ['b:0-3'], delay: auto, late_policy: drop}\n"
      "  - {from: 'b:0-1', to: ['a:55'], delay: 100ms}\n",
      "node:\n  name: padova\n  broker: tcp://127.0.0.1:5555\n  heartbeat_interval: 500ms\n"
      "driver:\n  kind: generator\n  channels: 4\n  rate_hz: 10\n  seed: 3\n",
      "node:\n  name: sink\ndriver:\n  kind: sink\n  ports: 8\n",
      "node:\n  name: zurich\n  secret_key: zurich.key\n  broker_key: broker.pub\n"
      "driver:\n  kind: chip\n  cores: 1\n",
      "driver:\n  kind: mea\n  electrodes: 60\n",
      "driver:\n  kind: synapse\n  neurons: 4\n",
      "driver:\n  kind: chip\n  chip: {neuron_model: iontronic, iontronic: {preset: robin2021-md, bias: 0.01}}\n",
      "driver:\n  kind: synapse\n  neurons: 2\n  synapses: [{pre: 0, post: 1, cell: [0, 0]}]\n"
      "  device: {model: nanofluidic, preset: robin2023, law: bipolar, tau_s: 2}\n",
      "driver:\n  kind: synapse\n  neurons: 2\n  synapses: [{pre: 0, post: 1, cell: [0, 0]}]\n"
      "  device: {model: ts-pcm, pcm: {drift: false, g_min_s: 1e-7}, ts: {v_th: 1}, cell: {drive_width: 50ms}}\n",
      "broker: {listen: 'tcp://0.0.0.0:1', topology: t.yaml}\n",
      "[1, 2, {a: b}]\n",
      "nodes: {x: {kind: generator, channels: -1}}\n",
  };
  return ion::fuzz::replay("fuzz_config", corpus, 20000, 20261203);
}
#endif
