// Each counter is declared once (ion/core/status_counters.h and its proto field's `shown`
// options) and shown everywhere from there: these tests fill every shown field of a status with
// a distinct value and find each in /api/status and /metrics, and check that every counter of
// the lists has a shown proto field.
#include <gtest/gtest.h>

#include <google/protobuf/descriptor.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "ion/broker/status_text.h"
#include "ion/core/status_counters.h"
#include "ion/v1/ion.pb.h"

namespace ion {
namespace {

namespace pb = google::protobuf;

// Sets every shown scalar field of `m` to a distinct value from `next` (booleans to true).
void fill_shown(pb::Message& m, uint64_t& next) {
  const pb::Reflection* r = m.GetReflection();
  const pb::Descriptor* d = m.GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const pb::FieldDescriptor* f = d->field(i);
    if (f->is_repeated() || !f->options().HasExtension(v1::shown)) continue;
    switch (f->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_BOOL: r->SetBool(&m, f, true); break;
      case pb::FieldDescriptor::CPPTYPE_INT64: r->SetInt64(&m, f, static_cast<int64_t>(next++)); break;
      case pb::FieldDescriptor::CPPTYPE_UINT64: r->SetUInt64(&m, f, next++); break;
      case pb::FieldDescriptor::CPPTYPE_UINT32: r->SetUInt32(&m, f, static_cast<uint32_t>(next++)); break;
      case pb::FieldDescriptor::CPPTYPE_STRING: r->SetString(&m, f, "s" + std::to_string(next++)); break;
      default: FAIL() << f->full_name() << ": a shown field of a type the test does not fill";
    }
  }
}

std::string json_value(const pb::Message& m, const pb::FieldDescriptor* f) {
  const pb::Reflection* r = m.GetReflection();
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_BOOL: return r->GetBool(m, f) ? "true" : "false";
    case pb::FieldDescriptor::CPPTYPE_INT64: return std::to_string(r->GetInt64(m, f));
    case pb::FieldDescriptor::CPPTYPE_UINT64: return std::to_string(r->GetUInt64(m, f));
    case pb::FieldDescriptor::CPPTYPE_UINT32: return std::to_string(r->GetUInt32(m, f));
    case pb::FieldDescriptor::CPPTYPE_STRING: return '"' + r->GetString(m, f) + '"';
    default: return "?";
  }
}

double metric_value(const pb::Message& m, const pb::FieldDescriptor* f, double scale) {
  const pb::Reflection* r = m.GetReflection();
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_BOOL: return r->GetBool(m, f) ? 1.0 : 0.0;
    case pb::FieldDescriptor::CPPTYPE_INT64: return static_cast<double>(r->GetInt64(m, f)) * scale;
    case pb::FieldDescriptor::CPPTYPE_UINT64: return static_cast<double>(r->GetUInt64(m, f)) * scale;
    default: return std::nan("");
  }
}

// Every shown field of `m` is in `json` with its value, and every one with a metric is in
// `metrics` as `family{labels} value`.
void expect_shown(const pb::Message& m, const std::string& labels, const std::string& json,
                  const std::string& metrics) {
  const pb::Descriptor* d = m.GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const pb::FieldDescriptor* f = d->field(i);
    if (f->is_repeated() || !f->options().HasExtension(v1::shown)) continue;
    const v1::Shown& how = f->options().GetExtension(v1::shown);
    ASSERT_FALSE(how.json().empty()) << f->full_name() << " has no /api/status key";
    const std::string kv = '"' + how.json() + "\":" + json_value(m, f);
    EXPECT_NE(json.find(kv), std::string::npos) << f->full_name() << ": " << kv << " not in " << json;
    if (how.metric().empty()) continue;
    EXPECT_FALSE(how.help().empty()) << how.metric() << " has no HELP";
    EXPECT_NE(metrics.find("# TYPE " + how.metric() + (how.gauge() ? " gauge" : " counter")), std::string::npos)
        << how.metric();
    char value[64];
    std::snprintf(value, sizeof value, "%.9g", metric_value(m, f, how.scale() != 0 ? how.scale() : 1.0));
    const std::string sample = how.metric() + "{" + labels + "} " + value;
    EXPECT_NE(metrics.find(sample + "\n"), std::string::npos) << sample << " not in /metrics";
  }
}

TEST(StatusCounters, EveryShownFieldReachesApiStatusAndMetricsWithItsValue) {
  v1::StatusReply r;
  uint64_t next = 101;
  v1::NodeStatus* n = r.add_nodes();
  fill_shown(*n, next);
  n->set_name("lab");
  fill_shown(*n->mutable_health(), next);
  v1::TapStatus* t = r.add_taps();
  fill_shown(*t, next);
  t->set_name("rec");
  const std::string json = status_json(r);
  const std::string metrics = prometheus_metrics(r, nullptr);
  expect_shown(*n, "node=\"lab\"", json, metrics);
  expect_shown(n->health(), "node=\"lab\"", json, metrics);
  expect_shown(*t, "tap=\"rec\"", json, metrics);
}

// A field with a name in the lists but no `shown` option would travel but be shown nowhere.
TEST(StatusCounters, EveryListedCounterIsAShownProtoField) {
  const auto check = [](const pb::Descriptor* d, const std::vector<std::string>& names, bool metric) {
    for (const std::string& name : names) {
      const pb::FieldDescriptor* f = d->FindFieldByName(name);
      ASSERT_NE(f, nullptr) << d->name() << " has no field " << name;
      ASSERT_TRUE(f->options().HasExtension(v1::shown)) << d->name() << "." << name << " is not shown";
      if (metric) {
        EXPECT_FALSE(f->options().GetExtension(v1::shown).metric().empty())
            << d->name() << "." << name << ": a node's delivery counter must be on /metrics";
      }
    }
  };
#define ION_NAME(name) #name,
  check(v1::NodeStatus::descriptor(), {ION_BROKER_NODE_COUNTERS(ION_NAME)}, false);
  check(v1::TapStatus::descriptor(), {ION_BROKER_TAP_COUNTERS(ION_NAME)}, false);
  check(v1::NodeHealth::descriptor(), {ION_NODE_HEALTH_COUNTERS(ION_NAME)}, true);
#undef ION_NAME
}

}  // namespace
}  // namespace ion
