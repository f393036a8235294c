#pragma once
// Pieces of `ion connectome` shared by its commands and its benchmark: an emulated culture run
// with its wiring, and the pasted network run on emulated silicon (connectome_run.cpp).
#include <cstdint>
#include <string>
#include <vector>

#include "ion/broker/topology.h"
#include "ion/builtin/generator.h"
#include "ion/chip/chip_driver.h"
#include "ion/connectome/connectome.h"
#include "ion/synapse/instrument.h"
#include "ion/synapse/synapse_driver.h"

namespace ion::cli {

// An emulated culture run for a while, network only: its neurons' spike trains and its wiring
// at neuron level ("n17") and on electrodes (each neuron on the electrode that sees it largest,
// named by electrode number as the MEA node's channels are).
struct CultureRun {
  std::vector<std::string> neuron_names;
  std::vector<std::vector<int64_t>> neuron_times_ns;
  std::vector<std::vector<int64_t>> electrode_times_ns;
  std::vector<connectome::TrueEdge> neuron_truth;
  std::vector<connectome::TrueEdge> electrode_truth;
  uint32_t electrodes = 0;
  double sample_rate_hz = 0;
  uint64_t spikes = 0;
};

struct SimulateOptions {
  uint32_t neurons = 60;
  double minutes = 10;
  uint64_t seed = 1;
  double connection_probability = 0.1;
  double step_ms = 0.5;
  uint32_t rows = 8, cols = 8;
  // An asynchronous, noise-driven regime (about 5 Hz per neuron) in which each synapse leaves a
  // mark on its target's firing: what inference is scored on. --bursting takes the MEA node's
  // culture defaults instead (network bursts; docs/devices/mea.md).
  double noise_current = 4.0;
  double weight_exc = 4.0;
  double weight_inh = 8.0;
  // The MEA node's culture defaults (network bursts).
  void bursting();
};

CultureRun run_culture(const SimulateOptions& s);

// A map's connections laid out as differential pairs of crossbar cells, filled row by row, one
// crossbar after another: connection i on cells 2i (+) and 2i+1 (-). The cell of the
// connection's sign is set to r_min + w (r_max - r_min), w = |strength| / max |strength|
// (quantised to `levels`; not when 0); the other stays at r_min (weight 0).
struct PastedCell {
  uint32_t crossbar = 0;
  synapse::CellAddress at;
  size_t edge = 0;        // index in the edges
  bool positive = true;   // the pair's + side
  double target_ohm = 0;
};
struct PastePlan {
  std::vector<double> weights;  // per connection, as pasted
  std::vector<PastedCell> cells;
  uint32_t crossbars = 0;       // used
};
PastePlan plan_paste(const std::vector<connectome::MapEdge>& edges, uint32_t rows, uint32_t cols, uint32_t levels,
                     double r_min_ohm, double r_max_ohm);

// The pasted network run: one silicon neuron per channel of the map on the chip node's emulator,
// each driven by its own Poisson background (as the culture's noise drives its neurons), and the
// map's significant connections through synapse boards that program their crossbar by
// write-verify at start (the + cell of a pair to the target's fast excitatory synapse, the - cell
// to its fast inhibitory one, the map's delay on the connection), all through one in-process
// broker. What the chip fired is observed by a sink.
struct PastedRunOptions {
  double seconds = 60;            // of network activity after every board is programmed
  uint32_t rows = 32, cols = 32;  // per crossbar
  // The drive: a Poisson train per neuron on its slow excitatory synapse (made fast: 5 ms), many
  // small events like the culture's noise current, so that a pasted synapse stands out.
  // Stand-ins tuned on the 60-neuron culture (docs/connectome.md): about 8 Hz per neuron, a
  // pasted synapse of weight 1 about as strong as the culture's strongest.
  double background_hz = 2000;
  double background_gain_pa = 30;
  double bias_pa = 300;           // the neurons' constant current (below rheobase)
  double exc_gain_pa = 1200;      // current jump of a weight-1 pasted event, fast excitatory
  double inh_gain_pa = 6000;      // and fast inhibitory
  double loop_delay_ms = 30;      // chip -> board: covers the chip's lag and the transport
  double chip_lag_ms = 10;        // how far the chip computes behind real time
  double min_delay_ms = 2;        // board -> chip, at least (the rest of a copied latency)
  uint64_t seed = 1;
  std::string record_path;        // non-empty: the chip and the boards recorded there (ion record)
};
// The pasted network as nodes and routes: the boards (a crossbar each, `plan`'s cells with their
// targets), the chip, the drive and the topology joining them. run_pasted runs it in one process;
// `ion connectome paste` writes it as config files for separate daemons.
struct PastedNetwork {
  std::vector<synapse::SynapseDriverOptions> boards;
  chip::ChipDriverOptions chip;
  GeneratorOptions drive;
  Topology topology;  // nodes drive, chip, board0..; no observer
};
// Throws std::runtime_error when an edge names a channel not in `channels`.
PastedNetwork pasted_network(const PastePlan& plan, const std::vector<connectome::MapEdge>& edges,
                             const std::vector<std::string>& channels, const PastedRunOptions& options);

struct PastedRun {
  std::vector<std::vector<int64_t>> spikes_ns;  // per neuron (map channel), network time
  uint64_t cells = 0, cells_programmed = 0, cells_failed = 0;
  uint64_t late_inputs = 0;       // chip inputs that missed their step
  double seconds = 0;             // activity recorded
};
// Throws std::runtime_error if the network cannot start or a board cannot program its cells.
PastedRun run_pasted(const std::vector<connectome::MapEdge>& edges, const std::vector<std::string>& channels,
                     const PastedRunOptions& options);

// Functional connectivity: for every pair, the largest Pearson correlation of their spike counts
// in `bin_ms` bins over [t0, t0 + seconds), one shifted against the other by up to `window_ms`
// either way (so that a connection's effect counts whatever its latency); a channel that never
// fired gives NaN rows.
std::vector<double> functional_connectivity(const std::vector<std::vector<int64_t>>& spikes_ns, int64_t t0_ns,
                                            double seconds, double bin_ms, double window_ms);
// The Pearson correlation of two FC matrices over their pairs (i < j) where both are defined.
double fc_similarity(const std::vector<double>& a, const std::vector<double>& b, size_t n);

}  // namespace ion::cli
