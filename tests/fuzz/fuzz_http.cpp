// Fuzz target for the broker's HTTP request head (the only input the dashboard port takes from
// the network before it answers): any bytes give a route or a refusal, never a crash, and a route
// to a file names an absolute path without line breaks, spaces or a query.
#include <cstdlib>
#include <string>
#include <vector>

#include "ion/broker/http.h"
#include "replay_main.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view head(reinterpret_cast<const char*>(data), size);
  const ion::HttpRoute r = ion::route_request(head);
  if (r.kind == ion::HttpRoute::Kind::file) {
    if (r.path.empty() || r.path.front() != '/') std::abort();
    if (r.path.find_first_of("\r\n ?") != std::string::npos) std::abort();
  }
  if (r.kind != ion::HttpRoute::Kind::bad_request && head.find("HTTP/1.") == std::string_view::npos) {
    std::abort();
  }
  if (r.topology && r.kind != ion::HttpRoute::Kind::status) std::abort();
  std::string host;
  uint16_t port = 0;
  if (ion::parse_host_port(std::string(head), host, port) && host.empty()) std::abort();
  return 0;
}

#ifndef ION_LIBFUZZER
int main() {
  const std::vector<std::string> corpus = {
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /api/status?topology=1 HTTP/1.1\r\n\r\n",
      "GET /metrics HTTP/1.0\r\n\r\n",
      "GET /api/live HTTP/1.1\r\nAccept: text/event-stream\r\n\r\n",
      "POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
      "GET /../index.html HTTP/1.1\r\n\r\n",
      "GET http://x/ HTTP/1.1\r\n\r\n",
      "hello\r\n\r\n",
      "127.0.0.1:8080",
      "[::1]:0",
  };
  return ion::fuzz::replay("fuzz_http", corpus, 200000, 20261202);
}
#endif
