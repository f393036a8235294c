#pragma once
// A chemically mediated artificial neuron (Wang, Chen et al., Nature Electronics 5:586, 2022) and
// its dish, stepped on a fixed grid of network time: a dopamine (DA) sensor, an Ag-nanoparticle
// memristor that switches when the sensed signal is high enough (the neuron's firing; its
// threshold falls as switching consolidates), a heater in series with the memristor under a
// DA-loaded hydrogel that releases above 37.5 C, and PC12-like cells that release DA when
// stimulated and respond to it. Equations, parameters and which are stand-ins:
// docs/devices/chemical.md.
#include <cstdint>
#include <random>
#include <vector>

namespace ion::chemical {

struct SensorParams {
  double sensitivity_ua_per_cm2_per_mm = 419.9;  // press-reported
  double area_cm2 = 0.0707;                      // stand-in: a 3 mm disc
  double background_na = 5;                      // stand-in
  double noise_na = 1;                           // stand-in: rms
  double t90_s = 2;                              // stand-in: response time (first order)
  double lod_um = 1.0;                           // press-reported linear range 1 uM ...
  double linear_max_um = 1500;                   // ... to 1.5 mM
  double saturation_um = 500;                    // stand-in: scale of the saturation above it
  [[nodiscard]] double slope_na_per_um() const noexcept {
    // uA cm^-2 mM^-1 x cm^2 = uA/mM = nA/uM
    return sensitivity_ua_per_cm2_per_mm * area_cm2;
  }
};

struct MemristorParams {  // a diffusive Ag memristor with short- and long-term memory (stand-ins)
  double v_per_na = 1.65e-3;  // the potentiostat's transimpedance stage: sensor current -> volts
  double v_th = 0.5;          // switching threshold of a fresh device
  double v0 = 0.05;           // how steeply switching speeds up above it
  double tau_set_s = 75e-9;   // press-reported switching time
  double tau_stm_s = 5e-3;    // press-reported "ms" short-term memory
  double tau_ltm_s = 1e5;     // stand-in: long-term memory beyond the press-reported 1e4 s
  double x_c = 0.9;           // a switch (a firing) is x rising through this
  double hold_fraction = 0.8; // once on, it holds until V falls below hold_fraction x threshold
  double eta = 0.15;          // consolidation per switch: x_ltm += eta (1 - x_ltm)
  double kappa = 0.6;         // threshold drop with consolidation: v_th (1 - kappa x_ltm)
  double noise_tau_s = 0.1;   // the sensor noise's correlation time (it is low-passed)
  double g_on_s = 1e-3;
  double g_off_s = 1e-6;
};

struct ReleaseParams {  // heater and hydrogel (stand-ins except the release band)
  double v_app = 3.0;          // across memristor + heater
  double r_heater_ohm = 100;
  double r_th_k_per_w = 15000; // thermal resistance to the dish
  double tau_th_s = 5;         // thermal time constant
  double t_ambient_c = 37.0;
  double t_on_c = 37.5;        // press-reported release band ...
  double t_max_c = 45.0;       // ... 37.5-45 C; linear in between (stand-in shape)
  double k_max_per_s = 1.756e-3;  // 10 % of the load per minute at 45 C
  double load_nmol = 10;
  double command_heat_s = 1.0;    // a release command drives the heater this long
  double command_power_w = 0.7e-3;
};

struct DishParams {  // the bath and the PC12-like cells (stand-ins)
  double volume_ml = 1.0;      // 1 nmol in 1 mL = 1 uM
  double tau_clear_s = 30;     // DA uptake and oxidation
  double baseline_um = 0;
  double pc12_release_nmol = 0.5;  // DA per stimulation of the population
  double pc12_rate_max_hz = 5;     // their activity at saturating DA ...
  double pc12_ec50_um = 10;        // ... half of it at this concentration
};

struct ChemicalParams {
  SensorParams sensor;
  MemristorParams memristor;
  ReleaseParams release;
  DishParams dish;
  double step_ms = 1.0;
  uint64_t seed = 1;
  void validate() const;  // throws std::invalid_argument naming the parameter
};

// What the sensor reports: a concentration estimate, or a flag.
enum class Reading : uint8_t { in_range, below_range, saturated };

struct ChemicalState {
  double bath_um = 0;        // true DA in the dish
  double seen_um = 0;        // what the electrode responds to (lagged)
  double current_na = 0;     // sensor current
  double estimate_um = 0;    // (current - background) / slope
  Reading reading = Reading::below_range;
  double x = 0;              // memristor filament (volatile: dissolves with tau_stm)
  double x_ltm = 0;          // consolidation by past switching (lowers the threshold)
  double temperature_c = 37;
  double released_nmol = 0;  // from the hydrogel so far
  double heater_w = 0;
};

struct ChemicalEvent {
  enum class Kind : uint8_t { firing, pc12_spike };
  Kind kind;
  int64_t t_ns;
};

struct ChemicalCounters {
  uint64_t steps = 0;
  uint64_t firings = 0;
  uint64_t commands = 0;
  uint64_t stimulations = 0;
  uint64_t pc12_spikes = 0;
};

class ChemicalNeuron {
 public:
  explicit ChemicalNeuron(const ChemicalParams& p);
  [[nodiscard]] const ChemicalParams& params() const noexcept { return p_; }
  [[nodiscard]] int64_t step_ns() const noexcept { return dt_ns_; }
  [[nodiscard]] int64_t now_ns() const noexcept { return t_ns_; }
  void start_at(int64_t t_ns) noexcept { t_ns_ = t_ns; }

  // Inputs at a time (applied at the step that contains it, or the next if it is past).
  void command_release(int64_t t_ns) noexcept;          // heat for command_heat_s
  void stimulate_pc12(int64_t t_ns) noexcept;           // exocytosis into the bath
  void add_dopamine(double nmol, int64_t t_ns) noexcept;  // e.g. a pipette, a test

  // Integrates up to until_ns; appends firings and PC12 activity.
  void advance(int64_t until_ns, std::vector<ChemicalEvent>& out) noexcept;

  [[nodiscard]] const ChemicalState& state() const noexcept { return s_; }
  [[nodiscard]] const ChemicalCounters& counters() const noexcept { return c_; }
  // The switching threshold now, in volts at the memristor and in uM of dopamine at the sensor.
  [[nodiscard]] double threshold_v() const noexcept;
  [[nodiscard]] double threshold_um() const noexcept;

  // The sensor's steady reading of a bath at `um` (no noise, no lag): for calibration.
  [[nodiscard]] static double sensor_current_na(const SensorParams& s, double um) noexcept;
  [[nodiscard]] static Reading classify(const SensorParams& s, double estimate_um) noexcept;
  // The hydrogel's release rate constant at a temperature (1/s).
  [[nodiscard]] static double release_rate_per_s(const ReleaseParams& r, double temperature_c) noexcept;

 private:
  struct Pending {
    int64_t t_ns;
    uint8_t what;  // 0 command, 1 stimulation, 2 dopamine
    double nmol;
  };
  void step(std::vector<ChemicalEvent>& out) noexcept;

  ChemicalParams p_;
  int64_t dt_ns_;
  int64_t t_ns_ = 0;
  ChemicalState s_;
  ChemicalCounters c_;
  std::vector<Pending> pending_;
  int64_t heat_until_ns_ = INT64_MIN;
  double noise_na_ = 0;  // the sensor's correlated noise
  std::mt19937_64 rng_;
};

// The sensor's calibration as a lab does it: for each concentration, a fresh dish at that level
// (no clearance, the memristor kept from firing), the mean current over a second after 5 x t90;
// then the least-squares line of current on concentration.
struct Calibration {
  std::vector<double> levels_um;
  std::vector<double> mean_current_na;
  double slope_na_per_um = 0;
  double r2 = 0;
};
[[nodiscard]] Calibration calibrate(const ChemicalParams& p, const std::vector<double>& levels_um);

// The smallest dopamine bolus (a multiple of step_um, below max_um) that makes `from` fire within
// 20 s, tried on copies; a negative value when none does.
[[nodiscard]] double dose_to_fire(const ChemicalNeuron& from, double step_um = 0.5, double max_um = 100);

}  // namespace ion::chemical
