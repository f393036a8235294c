#pragma once
// `chemical`: a chemically mediated artificial neuron as an IoN node (docs/devices/chemical.md),
// with an emulated backend: the neuron and its dish (model.h) stepped on network time.
//   output channels (stream `stream`):
//     0  the sensor's dopamine concentration, uM (neuromodulator samples at sample_rate_hz)
//     1  the neuron's firings: the memristor switching (spikes)
//     2  samples below the sensor's range (neuromodulator; payload: the range's low end)
//     3  samples above its linear range (neuromodulator; payload: the range's high end)
//     4  the PC12-like cells' activity (spikes)
//   input ports: 0 a release command (the heater for command_heat_s), 1 a stimulation of the PC12
//     cells (they release dopamine); any event kind, at its time at the node.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ion/chemical/model.h"
#include "ion/core/config.h"
#include "ion/core/driver.h"

namespace ion::chemical {

inline constexpr uint32_t kChannels = 5;
inline constexpr uint32_t kPorts = 2;

struct ChemicalDriverOptions {
  ChemicalParams model;
  double sample_rate_hz = 5;
  std::chrono::microseconds lag{20000};    // the model runs this far behind network time
  std::chrono::microseconds block{10000};  // wake-up period
  uint32_t stream = 0;
  // Reads the `driver:` mapping (kind: chemical); errors name the key.
  static ChemicalDriverOptions from_config(const ConfigNode& driver);
};

class ChemicalDriver final : public Driver {
 public:
  explicit ChemicalDriver(ChemicalDriverOptions options);
  ~ChemicalDriver() override;
  [[nodiscard]] DriverInfo describe() const override;
  void start(Emitter& emitter) override;
  void deliver(const BatchHeader& header, const EventBatch& events, const Delivery& delivery) noexcept override;
  void stop() noexcept override;
  [[nodiscard]] std::map<std::string, int64_t> counters() const override;
  [[nodiscard]] std::vector<std::string> trouble_counters() const override;
  // {"dopamine_um": [bath, sensed], "temperature_c": [T], "threshold_um": [..]}: what the dashboard draws.
  [[nodiscard]] std::map<std::string, std::vector<float>> gauges() const override;

 private:
  void run(Emitter& emitter);
  ChemicalDriverOptions opts_;
  ChemicalNeuron model_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::vector<std::pair<uint32_t, int64_t>> inbox_;  // (port, time at the node)
  ChemicalState shown_;      // the latest state, under mu_
  double shown_threshold_um_ = 0;
  std::atomic<uint64_t> received_{0}, commands_{0}, stimulations_{0}, unknown_port_{0}, late_in_{0},
      samples_{0}, below_range_{0}, saturated_{0}, firings_{0}, pc12_spikes_{0}, behind_{0},
      emit_rejected_{0};
};

}  // namespace ion::chemical
