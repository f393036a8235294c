#include "ion/drivers/registry.h"

#include "ion/drivers/generator.h"
#include "ion/drivers/sink.h"

namespace ion {

std::unique_ptr<Driver> make_driver(const ConfigNode& root) {
  const ConfigNode d = root.child("driver");
  const std::string kind = d.string("kind");
  if (kind == "generator") return std::make_unique<GeneratorDriver>(GeneratorOptions::from_config(d));
  if (kind == "sink") return std::make_unique<SinkDriver>(SinkOptions::from_config(d));
  d.fail("kind", "one of: generator, sink");
}

}  // namespace ion
