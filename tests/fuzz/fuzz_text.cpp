// Fuzz target for the text inputs a user or a vendor hands over: plain and Axion spike-list CSV
// (importers), the synapse board's connectivity CSV, decimal seconds, the synapse instrument's
// reply lines, and the chip's UDP address-event and legacy 8-byte decoders. Bad input is a clear
// error or a counted rejection, never a crash or an inconsistent result.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "ion/chip/aer.h"
#include "ion/core/dataset.h"
#include "ion/interchange/import.h"
#include "ion/synapse/synapse_driver.h"
#include "replay_main.h"

namespace {

std::string scratch_path() {
  static const std::string p = "/tmp/ion-fuzz-text-" + std::to_string(::getpid()) + ".csv";
  return p;
}

void check_import(const ion::interchange::ImportResult& r) {
  for (const auto& s : r.data.sources) {
    if (s.channels.size() != s.times_ns.size() || (!s.payload.empty() && s.payload.size() != s.size())) std::abort();
    for (const uint32_t c : s.channels) {
      if (c >= s.desc.channels()) std::abort();
    }
    for (size_t i = 1; i < s.size(); ++i) {
      if (s.times_ns[i] < s.times_ns[i - 1]) std::abort();  // sorted by time
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  {
    std::FILE* f = std::fopen(scratch_path().c_str(), "wb");
    if (f == nullptr) return 0;
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  for (const char* format : {"csv", "axion-csv"}) {
    try {
      check_import(ion::interchange::import_file(format, scratch_path()));
    } catch (const std::runtime_error&) {
    }
  }
  try {
    const auto syn = ion::synapse::parse_connectivity(text, "fuzz.csv", {{"bio", 0}, {"si0", 1}}, ion::synapse::RuleKind::rate);
    ion::synapse::SynapseDriverOptions o;
    o.neurons = 4;
    o.synapses = syn;
    try {
      o.validate();
    } catch (const std::invalid_argument&) {
    }
  } catch (const std::invalid_argument&) {
  }
  int64_t ns = 0;
  if (ion::parse_seconds_ns(text, ns)) {
    int64_t back = 0;
    if (!ion::parse_seconds_ns(ion::format_seconds(ns), back) || back != ns) std::abort();
  }
  ion::chip::AerDatagram dg;
  if (ion::chip::decode_aer({data, size}, dg) == ion::chip::DecodeError::none && dg.events.size() > ion::chip::kAerMaxEvents) {
    std::abort();
  }
  ion::chip::LegacyPacket lp;
  if (ion::chip::decode_legacy({data, size}, lp) == ion::chip::DecodeError::none &&
      (lp.id > 0xFFFFFF || lp.ticks > 0xFFFFFF)) {
    std::abort();
  }
  return 0;
}

#ifndef ION_LIBFUZZER
int main() {
  std::vector<uint8_t> aer;
  const std::vector<ion::chip::AerEvent> ev(3);
  (void)ion::chip::encode_aer(7, ev, aer);
  const auto legacy = ion::chip::encode_legacy({'P', 123, 2, 4567});
  const std::vector<std::string> corpus = {
      "channel,time_s\nch_2,0.00004\nch_10,0.5\n\"a,b\",2.00000005\n",
      "channel,time_s,amp\ne1,1.5,0.25\ne2,0.5,-3\n",
      "Investigator,,Time (s),Electrode,Amplitude(mV)\n   Sampling Frequency,12500 Hz,0.01048,D3_31,0.093\n,,0.02,B6_22,0.05\n",
      "pre,post,wordline,bitline,rule,gain\nbio,si0,0,0,rate,1\n2,3,1,1,stdp,-0.5\n",
      "3573.7048",
      std::string(aer.begin(), aer.end()),
      std::string(legacy.begin(), legacy.end()),
  };
  const int rc = ion::fuzz::replay("fuzz_text", corpus, 20000, 20261202);
  std::remove(scratch_path().c_str());
  return rc;
}
#endif
