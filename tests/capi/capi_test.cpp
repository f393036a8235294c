// The C API's contract on misuse (include/ion/ion.h): every bad argument is an error code with a
// one-line message, never a crash; nothing needs a broker here.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "ion/ion.h"

namespace {

std::string last() { return ion_last_error(); }

TEST(CApi, VersionAndAbi) {
  EXPECT_STREQ(ion_version(), "0.1.0");
  EXPECT_EQ(ion_abi_version(), ION_ABI_VERSION);
  EXPECT_EQ(ion_check_abi(ION_ABI_VERSION), ION_OK);
  EXPECT_EQ(ion_check_abi(ION_ABI_VERSION + 1), ION_ERR_ABI);
  EXPECT_NE(last().find("built for libion ABI 2"), std::string::npos) << last();
  EXPECT_STREQ(ion_error_name(ION_ERR_REFUSED_NAME), "ION_ERR_REFUSED_NAME");
  EXPECT_STREQ(ion_error_name(12345), "ION_ERR_UNKNOWN");
}

TEST(CApi, NullHandlesAndOutputsAreArgumentErrors) {
  ion_delivery d;
  ion_stats s;
  ion_clock c;
  int64_t t = 0;
  uint32_t ch = 0;
  EXPECT_EQ(ion_wait_registered(nullptr, 0), ION_ERR_ARGUMENT);
  EXPECT_EQ(ion_emit(nullptr, &ch, nullptr, nullptr, 1, 0, 0), ION_ERR_ARGUMENT);
  EXPECT_EQ(ion_receive(nullptr, &d, sizeof d, 0), ION_ERR_ARGUMENT);
  EXPECT_EQ(ion_set_callback(nullptr, nullptr, nullptr), ION_ERR_ARGUMENT);
  EXPECT_EQ(ion_network_time_ns(nullptr, &t), ION_ERR_ARGUMENT);
  EXPECT_NE(last().find("ion_network_time_ns"), std::string::npos) << last();
  EXPECT_EQ(ion_local_time_ns(nullptr, &t), ION_ERR_ARGUMENT);
  EXPECT_EQ(ion_to_network_ns(nullptr, 0, &t), ION_ERR_ARGUMENT);
  EXPECT_EQ(ion_clock_estimate(nullptr, &c, sizeof c), ION_ERR_ARGUMENT);
  EXPECT_EQ(ion_get_stats(nullptr, &s, sizeof s), ION_ERR_ARGUMENT);
  EXPECT_EQ(ion_close(nullptr), ION_OK);
  EXPECT_EQ(ion_open(nullptr, 0, nullptr), ION_ERR_ARGUMENT);
  ion_node* n = reinterpret_cast<ion_node*>(1);
  EXPECT_EQ(ion_open(nullptr, 0, &n), ION_ERR_ARGUMENT);
  EXPECT_EQ(n, nullptr);
  EXPECT_EQ(ion_open_config(nullptr, &n), ION_ERR_ARGUMENT);
  EXPECT_EQ(ion_recording_open(nullptr, nullptr), ION_ERR_ARGUMENT);
  ion_recording_close(nullptr);
}

TEST(CApi, BadParametersAreConfigErrorsNamingTheKey) {
  ion_node_params p;
  ion_node_params_init(&p, sizeof p);
  ion_node* n = nullptr;
  EXPECT_EQ(ion_open(&p, sizeof p, &n), ION_ERR_ARGUMENT);  // no name
  EXPECT_NE(last().find("params.name"), std::string::npos) << last();
  p.name = "lab";
  p.channels = 1;
  p.log_level = "loud";
  EXPECT_EQ(ion_open(&p, sizeof p, &n), ION_ERR_CONFIG);
  EXPECT_NE(last().find("log_level"), std::string::npos) << last();
  p.log_level = "off";
  p.kind = "toaster";
  EXPECT_EQ(ion_open(&p, sizeof p, &n), ION_ERR_CONFIG);
  EXPECT_NE(last().find("node_kind"), std::string::npos) << last();
  p.kind = nullptr;
  p.channels = 0;
  EXPECT_EQ(ion_open(&p, sizeof p, &n), ION_ERR_CONFIG);  // neither channels nor ports
  p.channels = 1;
  p.key_file = "lab.key";
  EXPECT_EQ(ion_open(&p, sizeof p, &n), ION_ERR_ARGUMENT);  // a key without the broker's
  EXPECT_NE(last().find("broker_key"), std::string::npos) << last();
  p.key_file = nullptr;
  p.broker = "tcp://192.0.2.1:5555";  // off loopback, no keys: refused before connecting
  EXPECT_EQ(ion_open(&p, sizeof p, &n), ION_ERR_SECURITY);
  EXPECT_NE(last().find("without encryption"), std::string::npos) << last();
  EXPECT_EQ(n, nullptr);
  EXPECT_EQ(ion_open_config("/nonexistent/lab.yaml", &n), ION_ERR_CONFIG);
  EXPECT_NE(last().find("/nonexistent/lab.yaml"), std::string::npos) << last();
}

TEST(CApi, BeforeRegistrationNothingPretendsToHaveNetworkTime) {
  ion_node_params p;
  ion_node_params_init(&p, sizeof p);
  p.name = "lab";
  p.broker = "tcp://127.0.0.1:1";  // nothing listens there
  p.channels = 2;
  p.log_level = "off";
  ion_node* n = nullptr;
  ASSERT_EQ(ion_open(&p, sizeof p, &n), ION_OK) << last();
  int64_t t = 0;
  EXPECT_EQ(ion_network_time_ns(n, &t), ION_ERR_NOT_READY);
  const uint32_t ch[2] = {0, 1};
  EXPECT_EQ(ion_emit(n, ch, nullptr, nullptr, 2, ION_KIND_SPIKE, 0), ION_ERR_NOT_READY);
  EXPECT_EQ(ion_emit(n, ch, nullptr, nullptr, 2, 7, 0), ION_ERR_ARGUMENT);  // not a kind
  EXPECT_EQ(ion_emit(n, nullptr, nullptr, nullptr, 2, 0, 0), ION_ERR_ARGUMENT);
  EXPECT_EQ(ion_emit(n, ch, nullptr, nullptr, 0, 0, 0), ION_EMIT_QUEUED);  // nothing to do
  ion_delivery d;
  EXPECT_EQ(ion_receive(n, &d, sizeof d, 0), ION_ERR_TIMEOUT);
  EXPECT_EQ(ion_receive(n, nullptr, sizeof d, 0), ION_ERR_ARGUMENT);
  EXPECT_EQ(ion_wait_registered(n, 200), ION_ERR_TIMEOUT);
  EXPECT_NE(last().find("no answer from a broker"), std::string::npos) << last();
  ion_stats s;
  std::memset(&s, 0xff, sizeof s);
  ASSERT_EQ(ion_get_stats(n, &s, sizeof s), ION_OK);
  EXPECT_EQ(s.registered, 0);
  EXPECT_EQ(s.emitted, 0U);
  // An older caller's smaller struct gets only its prefix.
  uint64_t prefix[2] = {0, 0xdeadbeef};
  ASSERT_EQ(ion_get_stats(n, reinterpret_cast<ion_stats*>(prefix), sizeof(int)), ION_OK);
  EXPECT_EQ(prefix[1], 0xdeadbeefU);
  EXPECT_EQ(ion_close(n), ION_OK);
}

TEST(CApi, ARecordingThatIsNotOneIsAnIoError) {
  ion_recording* r = nullptr;
  EXPECT_EQ(ion_recording_open("/nonexistent.ionrec", &r), ION_ERR_IO);
  EXPECT_NE(last().find("/nonexistent.ionrec"), std::string::npos) << last();
  EXPECT_EQ(r, nullptr);
}

}  // namespace
