#pragma once
// `synapse`: a memristive synapse board as an IoN node (the Southampton hub's role). Input ports
// are neurons of the network (port n = neuron n): presynaptic spikes are transmitted, and
// postsynaptic spikes drive plasticity. Each synapse (pre, post) -> crossbar cell (wordline,
// bitline) has output channel k = its row in the connectivity; channel S + k reports its weight.
//   transmission  on a pre spike due at the board at T (source time + delay), every synapse of
//                 that neuron emits a synaptic_input event at T with its weight (from the latest
//                 read of its cell): never waits for the instrument;
//   plasticity    the rate rule or STDP per synapse on the spikes' times at the board (see
//                 plasticity.h); pulses go to the instrument queue, each followed by a read;
//   weights       every completed read updates the weight and is reported on channel S + k.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ion/core/config.h"
#include "ion/core/driver.h"
#include "ion/synapse/instrument.h"
#include "ion/synapse/write_verify.h"
#include "ion/synapse/plasticity.h"

namespace ion::synapse {

struct SynapseSpec {
  uint32_t pre = 0;
  uint32_t post = 0;
  CellAddress cell;
  RuleKind rule = RuleKind::rate;
  float gain = 1.0F;  // multiplies the mapped weight (negative: an inhibitory connection)
  double target_ohm = 0;  // > 0: programmed to this resistance by write-verify at start
};

// How a resistance becomes the transmitted weight.
enum class WeightMap : uint8_t {
  resistance,   // (R - r_min) / (r_max - r_min), clipped to [0, 1]: the 2017 hub's mapping
  conductance,  // (1/R - 1/r_max) / (1/r_min - 1/r_max), clipped to [0, 1]
  byte,         // 255 (R - r_min) / (r_max - r_min), clipped and rounded: the hub's weight byte
};

struct WeightOptions {
  WeightMap map = WeightMap::resistance;
  double r_min_ohm = 4000;
  double r_max_ohm = 9000;
};

struct SafetyLimits {
  double max_volts = 5.0;
  double max_width_s = 1e-3;
};

enum class InstrumentBackend : uint8_t { emulator, tcp, serial };

struct SynapseDriverOptions {
  uint32_t neurons = 0;                       // input ports
  std::map<std::string, uint32_t> neuron_names;  // optional names for the connectivity
  std::vector<SynapseSpec> synapses;
  CrossbarOptions crossbar;
  InstrumentBackend backend = InstrumentBackend::emulator;
  InstrumentTiming timing;
  LineInstrumentOptions line;
  WeightOptions weight;
  RuleSet rules;
  SafetyLimits safety;
  std::chrono::milliseconds refresh_interval{0};  // periodic re-read of every cell; 0 = off
  WriteVerifyOptions write_verify;  // for synapses with a target resistance
  std::string program_report;       // where to write the programming report (CSV); empty: not
  uint32_t stream = 0;
  uint32_t weight_stream = 1;

  // Reads the `driver:` mapping (kind: synapse); the connectivity may be a CSV file
  // (pre,post,wordline,bitline[,rule][,gain][,target_ohm]). Errors name the file, line and key.
  static SynapseDriverOptions from_config(const ConfigNode& driver);
  // Unknown neurons, cells outside the array, duplicate cells, unsafe pulses: throws
  // std::invalid_argument naming the synapse.
  void validate() const;
  [[nodiscard]] uint32_t channels() const noexcept { return 2 * static_cast<uint32_t>(synapses.size()); }
};

// Parses connectivity CSV text; `where` prefixes errors ("file:line: ...").
std::vector<SynapseSpec> parse_connectivity(const std::string& text, const std::string& where,
                                            const std::map<std::string, uint32_t>& names,
                                            RuleKind default_rule);

[[nodiscard]] float map_weight(const WeightOptions& w, double r_ohm) noexcept;

class SynapseDriver final : public Driver {
 public:
  explicit SynapseDriver(SynapseDriverOptions options);  // opens the instrument; throws
  ~SynapseDriver() override;

  [[nodiscard]] DriverInfo describe() const override;
  void start(Emitter& emitter) override;
  void deliver(const BatchHeader& header, const EventBatch& events,
               const Delivery& delivery) noexcept override;
  void stop() noexcept override;
  [[nodiscard]] std::map<std::string, int64_t> counters() const override;
  [[nodiscard]] std::vector<std::string> trouble_counters() const override;

  // Current weight of each synapse (latest read, mapped); NaN until its first read.
  [[nodiscard]] std::vector<float> weights() const;
  // {"weight": weights()}: what the dashboard draws.
  [[nodiscard]] std::map<std::string, std::vector<float>> gauges() const override;
  [[nodiscard]] std::vector<double> resistances_ohm() const;  // latest reads
  // Emulator only (after stop): the cells' true resistances.
  [[nodiscard]] std::vector<double> true_resistances_ohm() const;
  [[nodiscard]] PlasticityCounters plasticity() const;
  struct SynapseState {
    uint32_t pre = 0;
    uint32_t post = 0;
    float initial_weight = 0;  // from the first read of its cell (NaN before)
    float weight = 0;          // latest read
    uint64_t ltp = 0;          // pulses decided
    uint64_t ltd = 0;
  };
  [[nodiscard]] std::vector<SynapseState> synapse_states() const;
  [[nodiscard]] const SynapseDriverOptions& options() const noexcept { return opts_; }

 private:
  void plasticity_loop();
  void program_targets();
  void on_result(const InstrumentResult& r) noexcept;
  void program(const Pulse& p) noexcept;
  void drive_cells(uint32_t port, int64_t t_ns) noexcept;  // TS-PCM boards; under transmit_mu_

  SynapseDriverOptions opts_;
  std::unique_ptr<Instrument> instrument_;
  EmulatedInstrument* emulated_ = nullptr;
  std::vector<std::vector<uint32_t>> by_pre_;   // synapses transmitting each neuron's spikes
  std::vector<std::vector<uint32_t>> by_cell_;  // synapses on each cell (one, by validation)
  std::unique_ptr<std::atomic<float>[]> weight_;
  std::unique_ptr<std::atomic<double>[]> r_read_;
  std::unique_ptr<std::atomic<float>[]> initial_weight_;
  std::atomic<Emitter*> emitter_{nullptr};
  std::mutex transmit_mu_;  // deliver() runs on the playout thread and, for late events, the receive thread
  EventBatch out_;
  bool cells_spike_ = false;     // TS-PCM: the cells fire on channels 0..S-1
  std::vector<int64_t> fired_;   // scratch for drive_cells, under transmit_mu_
  std::vector<std::pair<int64_t, uint32_t>> cell_events_;  // (time, channel), under transmit_mu_
  std::atomic<uint64_t> cell_drives_{0}, cell_firings_{0}, cell_firings_capped_{0};

  std::thread thread_;
  // Programming at start: completions go to program_sync_ while `programming_`.
  std::atomic<bool> programming_{false};
  std::atomic<bool> cancel_programming_{false};
  std::unique_ptr<SyncInstrument> program_sync_;
  std::vector<ProgramResult> program_results_;  // written by the driver thread before it runs
  std::atomic<uint64_t> cells_programmed_{0}, cells_program_failed_{0};
  mutable std::mutex mu_;  // guards the engine and stop_
  std::condition_variable cv_;
  bool stop_ = false;
  std::mutex inbox_mu_;  // transmission only ever takes this one, for a push
  std::vector<std::pair<uint32_t, int64_t>> inbox_;  // (neuron, time at the board)
  std::vector<std::pair<int64_t, double>> modulator_inbox_;  // (time at the board, concentration)
  std::atomic<uint64_t> modulator_unused_{0};  // neuromodulator events off the reward port
  static constexpr size_t kInboxCapacity = 1u << 20;
  std::unique_ptr<PlasticityEngine> engine_;
  std::mutex report_mu_;  // weight reports come from the instrument thread
  EventBatch report_;

  std::atomic<uint64_t> received_{0}, transmitted_{0}, transmitted_unread_{0}, unknown_port_{0},
      late_in_{0}, inbox_full_{0}, pulses_queued_{0}, reads_queued_{0}, queue_full_{0},
      unsafe_{0}, op_failed_{0}, reads_done_{0}, pulses_done_{0}, emit_rejected_{0};
};

}  // namespace ion::synapse
