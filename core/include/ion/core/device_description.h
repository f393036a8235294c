#pragma once
// A device's declared time base and units (ion.v1.DeviceDescription) and its channels' names and
// positions (ion.v1.ChannelInfo): between the driver's C++ form and the wire's, and one line
// saying what a time base means, for `ion status`, `ion inspect` and reports.
#include <string>
#include <vector>

#include "ion/core/driver.h"
#include "ion/v1/ion.pb.h"

namespace ion {

void to_proto(const DeviceDescription& d, v1::DeviceDescription& out);
// Channel names and positions between the driver's form and the wire's (Hello, recordings).
void to_proto(const ChannelDescription& c, v1::ChannelInfo& out);
[[nodiscard]] std::vector<ChannelDescription> from_proto(
    const google::protobuf::RepeatedPtrField<v1::ChannelInfo>& in);
// "device: iontronic, time base md: 1 us of device time runs as 1000 us of network time; ..."
[[nodiscard]] std::string device_line(const v1::DeviceDescription& d);

}  // namespace ion
