#include "ion/drivers/registry.h"

#include "ion/builtin/generator.h"
#include "ion/builtin/sink.h"
#include "ion/chemical/chemical_driver.h"
#include "ion/chip/chip_driver.h"
#include "ion/mea/mea_driver.h"
#include "ion/replay/replay_driver.h"
#include "ion/synapse/synapse_driver.h"

namespace ion {

std::unique_ptr<Driver> make_driver(const ConfigNode& root) {
  const ConfigNode d = root.child("driver");
  const std::string kind = d.string("kind");
  if (kind == "generator") return std::make_unique<GeneratorDriver>(GeneratorOptions::from_config(d));
  if (kind == "sink") return std::make_unique<SinkDriver>(SinkOptions::from_config(d));
  if (kind == "mea") {
    const mea::MeaOptions o = mea::MeaOptions::from_config(d);
    try {
      return std::make_unique<mea::MeaDriver>(o);
    } catch (const std::exception& e) {
      d.fail("", e.what());  // a bad raw file, address or detector setting, named with the file
    }
  }
  if (kind == "chip") {
    const chip::ChipDriverOptions o = chip::ChipDriverOptions::from_config(d);
    try {
      return std::make_unique<chip::ChipDriver>(o);
    } catch (const std::exception& e) {
      d.fail("", e.what());  // a UDP address that cannot be bound, named with the file
    }
  }
  if (kind == "synapse") {
    const synapse::SynapseDriverOptions o = synapse::SynapseDriverOptions::from_config(d);
    try {
      return std::make_unique<synapse::SynapseDriver>(o);
    } catch (const std::exception& e) {
      d.fail("", e.what());  // an instrument that cannot be reached, named with the file
    }
  }
  if (kind == "replay") {
    const replay::ReplayOptions o = replay::ReplayOptions::from_config(d);
    try {
      return std::make_unique<replay::ReplayDriver>(o);
    } catch (const std::exception& e) {
      d.fail("file", e.what());  // not a recording, or no such source, named with the file
    }
  }
  if (kind == "chemical") {
    return std::make_unique<chemical::ChemicalDriver>(chemical::ChemicalDriverOptions::from_config(d));
  }
  d.fail("kind", "one of: generator, sink, mea, chip, synapse, replay, chemical");
}

}  // namespace ion
