#pragma once
// What the 8-byte packets of the 2017 experiment mean (docs/devices/chip.md, "Legacy 8-byte
// packets"). The byte layout is one (aer.h); its meaning was not: the Southampton hub
// (arc1_pyqt, ProgPanels/UDPmod.py) read Zurich's timestamps as the interval since Zurich's
// previous event (its own clock was their running sum), Padova's as the delay from the stimulus
// that caused the spike, and sent its own packets with its absolute clock and the synapse's
// weight byte, id and time masked to 20 bits (its receiver read 24). So each direction has its
// own sender codes, time semantics, field meaning and widths, with presets for the 2017 roles.
//
// LegacyBridge is the pure part: packets in, events in network time out, and inputs to packets,
// with explicit times and no socket, so it can be stepped in tests.
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ion/chip/aer.h"
#include "ion/core/device_clock.h"

namespace ion::chip {

enum class LegacyTime : uint8_t {
  counter,         // an absolute tick counter (wraps at time_bits)
  interval,        // ticks since the same sender's previous packet
  since_stimulus,  // ticks since the latest stimulus sent the other way
};
enum class LegacyField : uint8_t {
  event_type,  // 0 PSP, 1 stimulated spike, 2 spontaneous spike (above: refused)
  weight,      // the synapse's weight byte 0..255 (weight_full_scale ↔ 255)
  unused,      // ignored in; 0 out
};
[[nodiscard]] std::string_view to_string(LegacyTime t) noexcept;
[[nodiscard]] std::string_view to_string(LegacyField f) noexcept;

struct LegacyDirection {
  std::vector<uint8_t> codes;  // in: accepted sender codes (empty: any); out: codes[0] is ours
  LegacyTime time = LegacyTime::counter;
  LegacyField field = LegacyField::event_type;
  uint8_t id_bits = 24;    // 1..24
  uint8_t time_bits = 24;  // 1..24
  uint8_t event_type = 0;  // out, field event_type: the type sent
};

struct LegacyOptions {
  std::string preset = "absolute";  // what the two directions were made from (for logs)
  LegacyDirection in{{}, LegacyTime::counter, LegacyField::event_type, 24, 24, 0};
  LegacyDirection out{{'S'}, LegacyTime::counter, LegacyField::weight, 24, 24, 0};
  float weight_full_scale = 1.0F;  // an input of this weight is weight byte 255, and back
  // Throws std::invalid_argument naming the presets if `name` is not one.
  static LegacyOptions preset_named(std::string_view name);
  static std::string_view preset_names() noexcept;
  void validate() const;  // std::invalid_argument on a width or code out of range
};

// One event the peer sent, in network time.
struct LegacyEvent {
  uint32_t channel = 0;
  int64_t time_ns = 0;
  float payload = 0;  // event type or weight; none when the in field is unused
};

class LegacyBridge {
 public:
  // `neurons`: ids at or above are refused in and out.
  LegacyBridge(LegacyOptions options, uint32_t neurons);

  // A datagram that arrived at network time `arrival_ns`. Returns the event, or the reason it was
  // refused (a counter name, e.g. "packet_unknown_sender_code"); `restarted` is set when a run of
  // backwards counter values made the mapping start again.
  struct In {
    std::optional<LegacyEvent> event;
    std::string_view refused;  // empty when accepted
    bool restarted = false;
  };
  In on_packet(std::span<const uint8_t> bytes, int64_t arrival_ns) noexcept;

  // The packet for an input to `neuron` of `weight`, stamped at the source at `source_ns` and due
  // (handed to the peer) at `deadline_ns`, or the reason it cannot be sent. Counter and interval
  // times are the deadline (when the peer gets it); a delay since a stimulus is measured at the
  // source. `clamped`: the weight was above full scale; `interval_clamped`: the interval was
  // longer than the field holds (sent as the longest; later intervals stay right).
  struct Out {
    std::optional<std::array<uint8_t, kLegacyPacketBytes>> bytes;
    std::string_view refused;
    bool clamped = false;
    bool interval_clamped = false;
  };
  Out on_input(uint32_t neuron, float weight, int64_t source_ns, int64_t deadline_ns) noexcept;

  // What kind of events the peer's packets become: weighted synaptic inputs or spikes.
  [[nodiscard]] bool emits_weights() const noexcept { return opts_.in.field == LegacyField::weight; }
  [[nodiscard]] bool emits_payload() const noexcept { return opts_.in.field != LegacyField::unused; }
  [[nodiscard]] const LegacyOptions& options() const noexcept { return opts_; }
  // The peer's clock rate against network time, ppm, once fitted (its counter or the sum of its
  // intervals); none for a peer that sends delays, or before its first packet.
  [[nodiscard]] std::optional<double> peer_drift_ppm() const noexcept {
    if (!peer_clock_->valid()) return std::nullopt;
    return peer_clock_->drift_ppm();
  }

  static constexpr int kRestartAfterBackwards = 16;
  static constexpr int64_t kTickNs = 50'000;  // 1 / kLegacyTickHz

 private:
  [[nodiscard]] std::optional<int64_t> in_time(uint32_t raw, int64_t arrival_ns,
                                               std::string_view& refused, bool& restarted) noexcept;
  [[nodiscard]] DeviceClockOptions peer_clock_options() const noexcept;

  LegacyOptions opts_;
  uint32_t neurons_;
  // counter in: the peer's counter against network time (fitted), or, when we send intervals,
  // the peer's clock is their running sum and maps exactly (sent_*).
  std::unique_ptr<DeviceClock> peer_clock_;
  int64_t last_in_ticks_ = INT64_MIN;
  int backwards_run_ = 0;
  int64_t in_interval_sum_ = 0;  // interval in: the peer's clock
  bool in_started_ = false;
  // Out: interval origin and running sum in ticks; last times each way for since_stimulus.
  bool out_started_ = false;
  int64_t out_origin_ns_ = 0;
  int64_t out_last_ticks_ = 0;
  std::vector<int64_t> in_times_;   // recent events the peer sent (stimuli to us), oldest first
  std::vector<int64_t> out_times_;  // recent packets we sent (stimuli to the peer)
};

}  // namespace ion::chip
