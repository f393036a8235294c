#include "ion/synapse/write_verify.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace ion::synapse {

void SyncInstrument::on_result(const InstrumentResult& r) {
  {
    std::lock_guard lock(mu_);
    result_ = r;
  }
  cv_.notify_all();
}

std::optional<InstrumentResult> SyncInstrument::run(const InstrumentOp& op, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  result_.reset();
  lock.unlock();
  if (!instrument_.submit(op)) return std::nullopt;
  lock.lock();
  if (!cv_.wait_for(lock, timeout, [&] { return result_.has_value(); })) return std::nullopt;
  return result_;
}

void WriteVerifyOptions::validate() const {
  auto bad = [](const char* what) { throw std::invalid_argument(what); };
  if (!(tolerance_ohm > 0)) bad("write-verify tolerance: must be > 0 ohm");
  if (max_pulses == 0 || max_pulses > 100000) bad("write-verify max pulses: 1..100000");
  if (!(v_start > 0 && v_step > 0 && v_max >= v_start && v_max <= 20)) {
    bad("write-verify voltages: need 0 < v_start <= v_max <= 20 and v_step > 0");
  }
  if (!(width_s > 0 && min_width_s > 0 && min_width_s <= width_s && width_s <= 1)) {
    bad("write-verify widths: need 0 < min_width <= width <= 1 s");
  }
}

std::vector<ProgramResult> write_verify(SyncInstrument& inst, const std::vector<ProgramTarget>& targets,
                                        const WriteVerifyOptions& o, const std::atomic<bool>* cancel) {
  o.validate();
  std::vector<ProgramResult> out;
  out.reserve(targets.size());
  for (const ProgramTarget& t : targets) {
    ProgramResult r;
    r.cell = t.cell;
    r.target_ohm = t.target_ohm;
    if (cancel != nullptr && cancel->load()) {
      r.why = "cancelled";
      out.push_back(r);
      continue;
    }
    auto read = [&]() -> bool {
      const auto res = inst.run({InstrumentOp::Kind::read, t.cell, 0, 0}, o.op_timeout);
      if (!res || !res->ok) return false;
      r.reached_ohm = res->r_ohm;
      return true;
    };
    if (!read()) {
      r.why = "the instrument did not answer a read";
      out.push_back(r);
      continue;
    }
    double v = o.v_start;
    double width = o.width_s;
    int last_dir = 0;
    while (true) {
      const double error = r.reached_ohm - t.target_ohm;
      if (std::fabs(error) <= o.tolerance_ohm) {
        r.ok = true;
        break;
      }
      if (cancel != nullptr && cancel->load()) {
        r.why = "cancelled";
        break;
      }
      if (r.pulses >= o.max_pulses) {
        r.why = "not within " + std::to_string(static_cast<int>(o.tolerance_ohm)) + " ohm after " +
                std::to_string(o.max_pulses) + " pulses";
        break;
      }
      const int dir = error < 0 ? 1 : -1;  // +1: R must rise
      if (last_dir != 0 && dir != last_dir) {  // overshoot: reverse, restart the ramp, finer steps
        v = o.v_start;
        width = std::max(o.min_width_s, width / 2);
      }
      last_dir = dir;
      const double volts = (dir > 0) == o.positive_raises_r ? v : -v;
      if (!inst.run({InstrumentOp::Kind::pulse, t.cell, volts, width}, o.op_timeout)) {
        r.why = "the instrument did not answer a pulse";
        break;
      }
      ++r.pulses;
      v = std::min(o.v_max, v + o.v_step);
      if (!read()) {
        r.why = "the instrument did not answer a read";
        break;
      }
    }
    out.push_back(r);
  }
  return out;
}

}  // namespace ion::synapse
