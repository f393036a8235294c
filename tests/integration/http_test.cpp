// The broker's HTTP side (docs/dashboard.md): /metrics in Prometheus text, /api/status JSON, the
// dashboard's files, and live streams whose memory per client is bounded ("slow browsers get
// decimated data, never unbounded buffers"). Valid Prometheus and JSON are also checked by
// independent parsers in tests/scripts/dashboard_check.py.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>

#include "harness.h"
#include "ion/broker/http.h"
#include "recorder_runner.h"

namespace ion::test {
namespace {

int connect_to(const std::string& endpoint, int rcvbuf = 0) {
  const auto colon = endpoint.rfind(':');
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(std::stoi(endpoint.substr(colon + 1))));
  inet_pton(AF_INET, endpoint.substr(0, colon).c_str(), &a.sin_addr);
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// Sends `request` as it stands and reads until the server closes (or 5 s of silence).
std::string http_exchange(const std::string& endpoint, const std::string& request) {
  const int fd = connect_to(endpoint);
  if (fd < 0) return "<no connection>";
  (void)::write(fd, request.data(), request.size());
  std::string out;
  char buf[16384];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

std::string get(const std::string& endpoint, const std::string& path) {
  return http_exchange(endpoint, "GET " + path + " HTTP/1.1\r\nHost: test\r\n\r\n");
}

std::string body_of(const std::string& response) {
  const auto p = response.find("\r\n\r\n");
  return p == std::string::npos ? "" : response.substr(p + 4);
}

class Http : public ::testing::Test {
 protected:
  Http() : broker_(make_options()) {}
  static BrokerOptions make_options() {
    Topology t;
    t.nodes = {{"gen", "generator", 4, 0}, {"sink", "sink", 0, 4}};
    t.connections = {connect_all("gen", "sink")};
    return broker_options(t);
  }
  std::unique_ptr<HttpServer> serve(size_t max_clients = 64) {
    HttpOptions o;
    o.listen = "127.0.0.1:0";
    o.max_clients = max_clients;
    o.live_interval = std::chrono::milliseconds(50);
    return std::make_unique<HttpServer>(broker_.broker(), o);
  }
  BrokerRunner broker_;
};

TEST_F(Http, MetricsAreValidPrometheusTextWithTheNodesCounters) {
  auto http = serve();
  NodeRunner<SinkDriver> snk(node_options("sink", broker_.endpoint()), sink(4));
  ASSERT_TRUE(snk.node().wait_registered(1, 10s));
  NodeRunner<GeneratorDriver> gen(node_options("gen", broker_.endpoint()), generator(4, 500.0, 1000));
  ASSERT_TRUE(eventually([&] { return snk.stats().received_events >= 1000; }, 30s));

  // The sink reports the gen -> sink link's end-to-end histogram in its next heartbeat.
  std::string r;
  ASSERT_TRUE(eventually([&] {
    r = get(http->endpoint(), "/metrics");
    return r.find("ion_link_latency_seconds_count{from=\"gen\",to=\"sink\"} 1000") != std::string::npos;
  })) << r;
  ASSERT_EQ(r.rfind("HTTP/1.1 200", 0), 0u) << r.substr(0, 200);
  EXPECT_NE(r.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  const std::string text = body_of(r);
  // Every line: a comment (HELP/TYPE), or `name{labels} value` with a valid name and number.
  const std::regex sample(R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)$)");
  const std::regex comment(R"(^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$)");
  std::istringstream in(text);
  std::string line;
  int samples = 0;
  while (std::getline(in, line)) {
    if (line.starts_with("#")) {
      EXPECT_TRUE(std::regex_match(line, comment)) << line;
    } else {
      EXPECT_TRUE(std::regex_match(line, sample)) << line;
      EXPECT_TRUE(line.starts_with("ion_")) << line;
      ++samples;
    }
  }
  EXPECT_GT(samples, 40);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(text, m, std::regex(R"(ion_events_received_total\{node="gen"\} ([0-9]+))")));
  EXPECT_EQ(std::stoull(m[1]), broker_.stats("gen").events_in);
  EXPECT_GE(std::stoull(m[1]), 1000u);
  EXPECT_NE(text.find("ion_ingress_latency_seconds_bucket{node=\"gen\",le=\"+Inf\"} "), std::string::npos);
  EXPECT_NE(text.find("ion_clock_offset_seconds{node=\"sink\"}"), std::string::npos);

  const std::string st = get(http->endpoint(), "/api/status");
  EXPECT_NE(st.find("Content-Type: application/json"), std::string::npos);
  EXPECT_EQ(body_of(st).front(), '{');
  EXPECT_NE(body_of(st).find("\"name\":\"gen\""), std::string::npos);
}

// "Every place in the docs that says a counter is visible must be true": every metric the table in
// docs/dashboard.md lists is served by /metrics, with the type the table gives it.
TEST_F(Http, EveryMetricTheDocsListIsServed) {
  std::ifstream doc(std::string(ION_SOURCE_DIR) + "/docs/dashboard.md");
  ASSERT_TRUE(doc.good());
  std::map<std::string, std::string> documented;  // name -> type ("" where the table gives none)
  std::string line;
  bool in_table = false;
  while (std::getline(doc, line)) {
    if (line.starts_with("## ")) in_table = line == "## Metrics";
    if (!in_table || !line.starts_with("| `ion_")) continue;
    const auto cells_end = line.find('|', 1);
    const std::string names = line.substr(1, cells_end - 1);
    const auto type_end = line.find('|', cells_end + 1);
    std::string type = line.substr(cells_end + 1, type_end - cells_end - 1);
    type.erase(0, type.find_first_not_of(' '));
    type.erase(type.find_last_not_of(' ') + 1);
    const std::regex name_re("`(ion_[a-z_]+)`");
    for (std::sregex_iterator it(names.begin(), names.end(), name_re), end; it != end; ++it) {
      documented[(*it)[1]] = type;
    }
  }
  ASSERT_GT(documented.size(), 30u) << "the table in docs/dashboard.md was not found";

  auto http = serve();
  NodeRunner<SinkDriver> snk(node_options("sink", broker_.endpoint()), sink(4));
  ASSERT_TRUE(snk.node().wait_registered(1, 10s));
  RecordOptions ro;  // a recorder, for the per-tap metrics
  ro.broker = broker_.endpoint();
  ro.out = ::testing::TempDir() + "/http-docs-metrics.ionrec";
  std::filesystem::remove(ro.out);
  ro.name = "docs-check";
  RecorderRunner rec(ro);
  ASSERT_TRUE(eventually([&] { return broker_.broker().tap_stats().size() == 1; }, 10s));
  NodeRunner<GeneratorDriver> gen(node_options("gen", broker_.endpoint()), generator(4, 500.0, 200));
  ASSERT_TRUE(eventually([&] { return snk.stats().received_events >= 200; }, 30s));
  (void)get(http->endpoint(), "/nothing-here");  // a refused request, so every HTTP figure has a value

  std::map<std::string, std::string> served;  // name -> type from `# TYPE`
  ASSERT_TRUE(eventually([&] {
    const std::string text = body_of(get(http->endpoint(), "/metrics"));
    std::istringstream in(text);
    std::string l;
    served.clear();
    while (std::getline(in, l)) {
      if (!l.starts_with("# TYPE ")) continue;
      std::istringstream f(l.substr(7));
      std::string name, type;
      f >> name >> type;
      served[name] = type;
    }
    // The sink's link histogram comes with its next heartbeat.
    return text.find("ion_link_latency_seconds_count{from=\"gen\",to=\"sink\"} 200") != std::string::npos;
  }));
  for (const auto& [name, type] : documented) {
    // A synapse board's weights: no board in this network (checked with one in dashboard_check.py).
    if (name == "ion_synapse_weight") continue;
    const auto it = served.find(name.ends_with("_total") ? name.substr(0, name.size() - 6) : name);
    const auto exact = served.find(name);
    const bool found = it != served.end() || exact != served.end();
    EXPECT_TRUE(found) << name << " is in docs/dashboard.md but not served by /metrics";
    if (found && !type.empty()) {
      EXPECT_EQ((exact != served.end() ? exact : it)->second, type) << name;
    }
  }
  for (const auto& [name, type] : served) {
    const bool listed = documented.contains(name) || documented.contains(name + "_total");
    EXPECT_TRUE(listed) << name << " is served by /metrics but not documented in docs/dashboard.md";
  }
}

TEST_F(Http, PagesAndRefusals) {
  auto http = serve();
  const std::string page = get(http->endpoint(), "/");
  EXPECT_EQ(page.rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_NE(page.find("/dashboard.js"), std::string::npos);
  EXPECT_NE(get(http->endpoint(), "/dashboard.js").find("EventSource(\"/api/live\")"), std::string::npos);
  EXPECT_EQ(get(http->endpoint(), "/etc/passwd").rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(get(http->endpoint(), "/../index.html").rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(http_exchange(http->endpoint(), "POST /metrics HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 405", 0), 0u);
  EXPECT_EQ(http_exchange(http->endpoint(), "hello\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  // A request that never ends within 8 KiB is cut off, not buffered.
  const std::string endless = "GET / HTTP/1.1\r\nX: " + std::string(20000, 'a');
  EXPECT_EQ(http_exchange(http->endpoint(), endless), "");
  EXPECT_GE(http->figures().refused, 2u);
}

TEST_F(Http, TooManyClientsAreTurnedAway) {
  auto http = serve(2);
  const int a = connect_to(http->endpoint());
  const int b = connect_to(http->endpoint());
  ASSERT_TRUE(eventually([&] { return http->figures().clients == 2; }));
  EXPECT_EQ(get(http->endpoint(), "/metrics").rfind("HTTP/1.1 503", 0), 0u);
  ::close(a);
  ::close(b);
  ASSERT_TRUE(eventually([&] { return get(http->endpoint(), "/metrics").rfind("HTTP/1.1 200", 0) == 0; }));
}

TEST_F(Http, ASlowLiveClientGetsFewerFramesNotABacklog) {
  auto http = serve();
  NodeRunner<SinkDriver> snk(node_options("sink", broker_.endpoint()), sink(4));
  ASSERT_TRUE(snk.node().wait_registered(1, 10s));
  NodeRunner<GeneratorDriver> gen(node_options("gen", broker_.endpoint()), generator(4, 2000.0, 0));
  // A browser that asks for the live stream and then never reads, with a tiny socket buffer.
  const int slow = connect_to(http->endpoint(), 4096);
  const std::string req = "GET /api/live HTTP/1.1\r\nHost: test\r\n\r\n";
  ASSERT_EQ(::write(slow, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  // A reading client beside it.
  const int fast = connect_to(http->endpoint());
  ASSERT_EQ(::write(fast, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  std::string seen;
  char buf[65536];
  ASSERT_TRUE(eventually([&] {
    const ssize_t n = ::read(fast, buf, sizeof buf);
    if (n > 0) seen.append(buf, static_cast<size_t>(n));
    return seen.find("\"events\":{\"gen\":{\"t0\":") != std::string::npos && seen.size() > 20000;
  }));
  EXPECT_NE(seen.find("Content-Type: text/event-stream"), std::string::npos);
  // The slow one's frames are skipped (it would get only the newest), counted.
  ASSERT_TRUE(eventually([&] { return http->figures().frames_skipped >= 20; }, 30s))
      << http->figures().frames_skipped;
  EXPECT_EQ(http->figures().live_clients, 2u);
  // Everything else still answers, and routing lost nothing.
  EXPECT_EQ(get(http->endpoint(), "/api/status").rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(snk.stats().lost_events, 0u);
  EXPECT_EQ(broker_.stats("sink").dropped_events, 0u);
  ::close(slow);
  ::close(fast);
  ASSERT_TRUE(eventually([&] { return http->figures().live_clients == 0; }));
}

}  // namespace
}  // namespace ion::test
