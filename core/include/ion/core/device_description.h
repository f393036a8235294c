#pragma once
// A device's declared time base and units (ion.v1.DeviceDescription): from the driver's C++ form
// to the wire's, and one line saying what they mean, for `ion status`, `ion inspect` and reports.
#include <string>

#include "ion/core/driver.h"
#include "ion/v1/ion.pb.h"

namespace ion {

void to_proto(const DeviceDescription& d, v1::DeviceDescription& out);
// "device: iontronic, time base md: 1 us of device time runs as 1000 us of network time; ..."
[[nodiscard]] std::string device_line(const v1::DeviceDescription& d);

}  // namespace ion
