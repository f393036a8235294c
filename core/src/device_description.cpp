#include "ion/core/device_description.h"

#include <sstream>

namespace ion {

void to_proto(const DeviceDescription& d, v1::DeviceDescription& out) {
  out.set_model(d.model);
  out.set_time_base(d.time_base);
  out.set_time_unit(d.time_unit);
  out.set_time_scale(d.time_scale);
  out.set_voltage_unit(d.voltage_unit);
  out.set_current_unit(d.current_unit);
  out.set_simulation_scaled(d.simulation_scaled);
}

void to_proto(const ChannelDescription& c, v1::ChannelInfo& out) {
  out.set_id(c.id);
  out.set_name(c.name);
  out.set_x_um(c.x_um);
  out.set_y_um(c.y_um);
}

std::vector<ChannelDescription> from_proto(const google::protobuf::RepeatedPtrField<v1::ChannelInfo>& in) {
  std::vector<ChannelDescription> out;
  out.reserve(static_cast<size_t>(in.size()));
  for (const auto& c : in) out.push_back({c.id(), c.name(), c.x_um(), c.y_um()});
  return out;
}

std::string device_line(const v1::DeviceDescription& d) {
  std::ostringstream o;
  const std::string unit = d.time_unit().empty() ? "s" : d.time_unit();
  o << "device: " << (d.model().empty() ? "?" : d.model()) << ", time base " << d.time_base()
    << ": 1 " << unit << " of device time runs as " << (d.time_scale() > 0 ? d.time_scale() : 1.0)
    << ' ' << unit << " of network time";
  if (!d.voltage_unit().empty()) o << "; voltages in " << d.voltage_unit();
  if (!d.current_unit().empty()) o << "; currents in " << d.current_unit();
  if (d.simulation_scaled()) o << "; simulation-scaled values, not physical measurements";
  return o.str();
}

}  // namespace ion
