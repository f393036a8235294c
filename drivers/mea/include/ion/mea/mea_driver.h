#pragma once
// `mea`: a multi-electrode-array rig as an IoN node. Raw voltage from a source (emulated
// culture, int16 file, live TCP frame stream) runs through online spike detection; detected
// spikes leave as events (channel = electrode, time = threshold crossing in network time,
// payload = trough in µV). Events delivered to the node's ports stimulate the electrode with the
// same number, at their deadline, and blank detection there for the artifact.
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "ion/core/config.h"
#include "ion/core/device_clock.h"
#include "ion/core/driver.h"
#include "ion/mea/culture.h"
#include "ion/mea/detector.h"
#include "ion/mea/acquisition_sources.h"

namespace ion::mea {

enum class SourceKind : uint8_t { emulator, raw_file, tcp };

struct StimulationOptions {
  float amplitude_mv = 800;       // events without an amplitude (spike, synaptic input × weight)
  float max_amplitude_mv = 1500;  // larger requests are clamped (counted)
  uint32_t width_us = 200;        // per phase
};

struct MeaOptions {
  SourceKind source = SourceKind::emulator;
  CultureOptions emulator;
  // Emulator: where to write the culture's true wiring at start, on electrodes (what a
  // recording of this node is scored against); the neuron-level wiring goes beside it as
  // NAME.neurons.csv. Empty: not written.
  std::string wiring_file;
  RawFileOptions raw_file;
  double speed = 1.0;  // raw file playback speed (1 = real time)
  TcpStreamOptions tcp;
  DetectorOptions detection;  // channels, rate and scale come from the source
  StimulationOptions stimulation;
  std::chrono::microseconds block{1000};  // signal processed per step (paced sources)
  uint32_t stream = 0;
  // A file or live source's electrode names and positions (`layout:` a grid or a CSV file,
  // docs/devices/mea.md); the emulator has its culture's. Empty: none known.
  std::vector<ChannelDescription> layout;

  // Reads the `driver:` mapping (kind: mea). Errors name the file, line and key.
  static MeaOptions from_config(const ConfigNode& driver);
};

// Builds the configured source (throws with a clear message on a bad file or address).
std::unique_ptr<SignalSource> make_source(const MeaOptions& options);

class MeaDriver final : public Driver {
 public:
  explicit MeaDriver(MeaOptions options);
  MeaDriver(MeaOptions options, std::unique_ptr<SignalSource> source);
  ~MeaDriver() override;

  [[nodiscard]] DriverInfo describe() const override;
  // Electrode positions: the emulated culture's, or a file or live source's `layout`.
  [[nodiscard]] std::vector<ChannelDescription> channel_info() const override;
  void start(Emitter& emitter) override;
  void deliver(const BatchHeader& header, const EventBatch& events,
               const Delivery& delivery) noexcept override;
  void stop() noexcept override;
  [[nodiscard]] std::map<std::string, int64_t> counters() const override;
  [[nodiscard]] std::vector<std::string> trouble_counters() const override;

  [[nodiscard]] SignalSource& source() noexcept { return *source_; }
  [[nodiscard]] bool finished() const noexcept { return finished_.load(); }
  [[nodiscard]] uint64_t spikes() const noexcept { return spikes_.load(); }

 private:
  struct PendingStim {
    uint32_t electrode;
    float amplitude_mv;
    int64_t local_ns;  // deadline on the node's clock
  };
  void loop(Emitter& emitter);
  void apply_stimuli(Emitter& emitter, uint64_t from_sample);
  [[nodiscard]] int64_t sample_local_ns(uint64_t sample) const noexcept;
  [[nodiscard]] uint64_t local_to_sample(int64_t local_ns) const noexcept;

  MeaOptions opts_;
  std::unique_ptr<SignalSource> source_;
  SignalFormat format_;  // driver thread after start
  uint32_t channels_;     // fixed: electrodes = output channels = stimulation ports
  std::unique_ptr<SpikeDetector> detector_;
  std::atomic<Emitter*> emitter_{nullptr};  // read by deliver() on the playout thread
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_requested_ = false;
  std::vector<PendingStim> stim_queue_;  // guarded by mu_
  // Sample clock (driver thread): paced sources map samples linearly from the start; a live
  // stream through the device clock fitted on chunk arrivals.
  int64_t t0_local_ns_ = 0;
  uint64_t first_sample_ = 0;
  double ns_per_sample_ = 0;
  std::unique_ptr<DeviceClock> device_clock_;
  std::atomic<bool> finished_{false};
  std::atomic<uint64_t> samples_{0}, spikes_{0}, emit_rejected_{0}, stim_received_{0},
      stim_applied_{0}, stim_out_of_range_{0}, stim_unsupported_{0}, stim_clamped_{0},
      stim_late_{0}, behind_{0}, discontinuities_{0}, blanked_{0};
};

}  // namespace ion::mea
