#pragma once
// Builds the driver a node config asks for. Config errors name the file and key.
#include <memory>

#include "ion/core/config.h"
#include "ion/core/driver.h"

namespace ion {

// Reads the `driver:` mapping (its `kind` picks the driver) of a node config file.
std::unique_ptr<Driver> make_driver(const ConfigNode& root);

}  // namespace ion
