#pragma once
// `chip`: a silicon-neuron chip as an IoN node. Output spikes leave as events (channel = neuron,
// core·neurons_per_core + neuron in core; time = the crossing in network time). Events delivered
// to the node's ports are synaptic inputs at their deadline: port p drives neuron p mod N through
// synapse type p / N (N neurons; ports 0..N−1 fast excitatory, then slow excitatory, fast
// inhibitory, slow inhibitory), weight = the event's payload for synaptic_input events, 1 for
// spikes. Backends:
//   emulator    the AdEx chip model (model.h), stepped on network time;
//   udp         a real chip's host PC speaking IoN address events (aer.h) over UDP;
//   legacy_udp  a peer of the 2017 experiment speaking its 8-byte packets: N ports, one per
//               neuron id (the format carries no synapse type); weights become the weight byte.
#include <netinet/in.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ion/chip/aer.h"
#include "ion/chip/legacy.h"
#include "ion/chip/model.h"
#include "ion/chip/udp.h"
#include "ion/core/config.h"
#include "ion/core/device_clock.h"
#include "ion/core/driver.h"

namespace ion::chip {

enum class Backend : uint8_t { emulator, udp, legacy_udp };

struct UdpOptions {
  std::string listen = "127.0.0.1:7020";
  std::string peer;  // where inputs are sent; empty: the sender of the latest valid datagram
};

struct ChipDriverOptions {
  Backend backend = Backend::emulator;
  ChipOptions chip;
  UdpOptions udp;
  LegacyOptions legacy;
  // The emulator integrates this far behind network time, so an input handed over at its
  // deadline still reaches the step that contains it, even when the node's playout thread is
  // held up for a few ms. Output leaves this much after its time (absorbed by connection delays).
  std::chrono::microseconds lag{5000};
  std::chrono::microseconds block{1000};  // emulator wake-up period
  std::chrono::milliseconds max_catch_up{1000};  // behind by more: skip ahead (counted)
  uint32_t stream = 0;

  // Reads the `driver:` mapping (kind: chip). Errors name the file, line and key.
  static ChipDriverOptions from_config(const ConfigNode& driver);
  [[nodiscard]] uint32_t neurons() const noexcept { return chip.neurons(); }
  [[nodiscard]] uint32_t ports() const noexcept {
    return backend == Backend::legacy_udp ? neurons() : neurons() * kSynapseTypes;
  }
};

class ChipDriver final : public Driver {
 public:
  explicit ChipDriver(ChipDriverOptions options);  // binds the UDP socket; throws on failure
  ~ChipDriver() override;

  [[nodiscard]] DriverInfo describe() const override;
  [[nodiscard]] DeviceDescription device() const override;
  void start(Emitter& emitter) override;
  void deliver(const BatchHeader& header, const EventBatch& events,
               const Delivery& delivery) noexcept override;
  void stop() noexcept override;
  [[nodiscard]] std::map<std::string, int64_t> counters() const override;
  [[nodiscard]] std::vector<std::string> trouble_counters() const override;

  [[nodiscard]] uint16_t udp_port() const noexcept { return udp_ ? udp_->port() : 0; }
  [[nodiscard]] uint64_t spikes() const noexcept { return spikes_.load(); }
  // Emulator only, for tests: the model (touch it only before start or after stop).
  [[nodiscard]] ChipModel* model() noexcept { return model_.get(); }

 private:
  struct Input {
    uint32_t neuron;
    SynapseType type;
    float weight;
    int64_t t_ns;       // deadline
    int64_t source_ns;  // stamped at the source
  };
  struct Stamped {
    uint32_t channel;
    uint32_t raw;  // device counter
    float payload;
  };
  static constexpr int kRestartAfterBackwards = 16;
  void emulate(Emitter& emitter);
  void emit_stamped(std::span<const Stamped> events, bool with_payload, Emitter& emitter);
  [[nodiscard]] DeviceClockOptions device_clock_options() const noexcept;
  void receive(Emitter& emitter);
  void on_aer(std::span<const uint8_t> bytes, const sockaddr_in& from, Emitter& emitter);
  void on_legacy(std::span<const uint8_t> bytes, const sockaddr_in& from, Emitter& emitter);
  void send_inputs(const std::vector<Input>& inputs) noexcept;
  [[nodiscard]] uint64_t device_ticks_at(int64_t network_ns, double tick_hz) const noexcept;
  void count(const std::string& reason, uint64_t n = 1) noexcept;

  ChipDriverOptions opts_;
  uint32_t neurons_;
  std::unique_ptr<ChipModel> model_;
  std::unique_ptr<UdpEndpoint> udp_;
  std::optional<sockaddr_in> peer_;
  std::atomic<Emitter*> emitter_{nullptr};
  std::thread thread_;
  mutable std::mutex mu_;  // guards everything below until the atomics
  std::condition_variable cv_;
  bool stop_requested_ = false;
  std::vector<Input> inbox_;                        // emulator inputs from deliver()
  std::optional<sockaddr_in> last_sender_;
  std::unique_ptr<DeviceClock> device_clock_;       // udp: the chip host's counter against our clock
  std::unique_ptr<LegacyBridge> legacy_;            // legacy_udp: what the packets mean
  int64_t last_ticks_ = INT64_MIN;                  // latest event time accepted (unwrapped)
  int backwards_run_ = 0;                           // datagrams in a row with nothing in order
  std::map<uint64_t, SequenceTracker> senders_;     // IoN AER, per sender address
  uint32_t out_sequence_ = 0;
  std::map<std::string, uint64_t> rejected_;        // reason -> count
  std::atomic<uint64_t> spikes_{0}, inputs_received_{0}, inputs_sent_{0}, emit_rejected_{0},
      datagrams_{0}, datagrams_lost_{0}, behind_{0}, steps_skipped_{0};
  std::atomic<uint64_t> inputs_applied_{0}, inputs_late_{0}, clamped_{0};
};

}  // namespace ion::chip
