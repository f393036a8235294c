#pragma once
// `ion bench synapse`: transmitted synaptic events per second of the synapse board on one core
// (deliver() -> weighted events out, plasticity bookkeeping on), and plasticity evaluations per
// second of the rate rule and STDP.
#include <iosfwd>

namespace ion {

struct SynapseBenchOptions {
  bool quick = false;
  bool json = false;
};

int run_bench_synapse(const SynapseBenchOptions& options, std::ostream& out);

}  // namespace ion
