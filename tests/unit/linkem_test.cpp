// Link emulator pieces that need no sockets: the ZMTP splitter and the delay model.
#include <gtest/gtest.h>

#include <numeric>

#include "ion/linkem/profile.h"
#include "ion/linkem/zmtp.h"

namespace ion::linkem {
namespace {

std::string greeting() {
  std::string g(64, '\0');
  g[0] = static_cast<char>(0xFF);
  g[9] = 0x7F;
  g[10] = 3;
  g[11] = 0;
  g.replace(12, 4, "NULL");
  return g;
}

std::string frame(uint8_t flags, const std::string& body) {
  std::string f;
  if (body.size() > 255) {
    f.push_back(static_cast<char>(flags | 0x02));
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((body.size() >> (8 * i)) & 0xFF));
  } else {
    f.push_back(static_cast<char>(flags));
    f.push_back(static_cast<char>(body.size()));
  }
  return f + body;
}

TEST(ZmtpSplitter, SplitsGreetingCommandsAndWholeMessagesWhateverTheReadBoundaries) {
  const std::string ready = frame(0x04, "\x05READYxxxx");
  const std::string m1 = frame(0x00, "hello");
  const std::string m2 = frame(0x01, "part1") + frame(0x00, std::string(300, 'z'));  // long frame
  const std::string ping = frame(0x04, "\x04PING\x00\x10");
  const std::string stream = greeting() + ready + m1 + m2 + ping;
  for (size_t chunk : {size_t{1}, size_t{3}, size_t{64}, size_t{1000}}) {
    ZmtpSplitter s;
    std::vector<ZmtpUnit> out;
    for (size_t i = 0; i < stream.size(); i += chunk) {
      ASSERT_TRUE(s.feed(stream.data() + i, std::min(chunk, stream.size() - i), out));
    }
    // Greeting bytes come out as they arrive (peers negotiate on the first 11 of them).
    std::string greet;
    while (!out.empty() && out.front().kind == ZmtpUnit::Kind::greeting) {
      greet += out.front().bytes;
      out.erase(out.begin());
    }
    EXPECT_EQ(greet, greeting());
    out.insert(out.begin(), ZmtpUnit{ZmtpUnit::Kind::greeting, greet});
    ASSERT_EQ(out.size(), 5U) << "chunk " << chunk;
    EXPECT_EQ(out[1].kind, ZmtpUnit::Kind::command);
    EXPECT_EQ(out[1].bytes, ready);
    EXPECT_EQ(out[2].kind, ZmtpUnit::Kind::message);
    EXPECT_EQ(out[2].bytes, m1);
    EXPECT_EQ(out[3].kind, ZmtpUnit::Kind::message);
    EXPECT_EQ(out[3].bytes, m2);  // both frames, one unit
    EXPECT_EQ(out[4].bytes, ping);
    std::string joined;
    for (auto& u : out) joined += u.bytes;
    EXPECT_EQ(joined, stream);  // nothing lost, nothing added
    EXPECT_EQ(s.buffered(), 0U);
  }
}

TEST(ZmtpSplitter, PassesThePartialGreetingOnAtOnce) {
  ZmtpSplitter s;
  std::vector<ZmtpUnit> out;
  const std::string g = greeting();
  ASSERT_TRUE(s.feed(g.data(), 11, out));
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].bytes, g.substr(0, 11));
}

TEST(ZmtpSplitter, RefusesWhatIsNotZmtp) {
  ZmtpSplitter s;
  std::vector<ZmtpUnit> out;
  const std::string http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n" + std::string(64, ' ');
  EXPECT_FALSE(s.feed(http.data(), http.size(), out));
  ZmtpSplitter t;
  const std::string bad = greeting() + std::string("\xF0\x01x", 3);  // reserved flag bits
  EXPECT_FALSE(t.feed(bad.data(), bad.size(), out));
}

TEST(DelayModel, NeverBeatsTheFloorAndHasTheRequestedMeanAndSpread) {
  DelayModel d;
  d.base_ns = 15'000'000;
  d.jitter_mean_ns = 5'000'000;
  d.jitter_sd_ns = 1'000'000;
  std::mt19937_64 rng(9);
  std::vector<double> v(20000);
  for (auto& x : v) {
    const int64_t s = d.sample(rng);
    ASSERT_GE(s, d.base_ns);
    x = static_cast<double>(s);
  }
  const double mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  double var = 0;
  for (double x : v) var += (x - mean) * (x - mean);
  const double sd = std::sqrt(var / static_cast<double>(v.size()));
  EXPECT_NEAR(mean, 20e6, 0.05e6);
  EXPECT_NEAR(sd, 1e6, 0.05e6);
}

TEST(DelayModel, ParetoTailAddsRareLongDelays) {
  DelayModel d;
  d.base_ns = 1'000'000;
  d.tail_probability = 0.05;
  d.tail_scale_ns = 2'000'000;
  d.tail_alpha = 2.0;
  std::mt19937_64 rng(4);
  int tail = 0;
  for (int i = 0; i < 20000; ++i) tail += d.sample(rng) >= 3'000'000 ? 1 : 0;
  EXPECT_NEAR(tail / 20000.0, 0.05, 0.01);
}

TEST(LinkProfile, PresetsOfTheOriginalLinksRespectTheirFibreFloors) {
  const auto sp = LinkProfile::preset("southampton-padova");
  ASSERT_TRUE(sp);
  EXPECT_EQ(sp->up.delay.base_ns, 5'700'000);
  EXPECT_EQ(LinkProfile::preset("padova-zurich")->down.delay.base_ns, 1'650'000);
  EXPECT_EQ(LinkProfile::preset("southampton-zurich")->up.delay.base_ns, 4'000'000);
  EXPECT_FALSE(LinkProfile::preset("mars-earth"));
}

TEST(LinkProfile, FromConfigNamesBadPresetsAndReadsCustomDirections) {
  const ConfigNode bad = ConfigNode::parse("link:\n  preset: moon\n", "l.yaml");
  try {
    (void)LinkProfile::from_config(bad.child("link"));
    ADD_FAILURE();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("l.yaml:2: key 'link.preset': expected one of: loopback"),
              std::string::npos)
        << e.what();
  }
  const ConfigNode custom = ConfigNode::parse(
      "link:\n  up: {delay: 3ms, loss: 0.1, loss_drops: true}\n  down: {delay: 4ms, reorder: 0.2}\n",
      "c.yaml");
  const LinkProfile p = LinkProfile::from_config(custom.child("link"));
  EXPECT_EQ(p.up.delay.base_ns, 3'000'000);
  EXPECT_TRUE(p.up.loss_drops);
  EXPECT_DOUBLE_EQ(p.down.reorder, 0.2);
}

}  // namespace
}  // namespace ion::linkem
