#pragma once
// The broker's HTTP side, on its own thread (Asio): `/metrics` (Prometheus text), `/api/status`
// (JSON), `/api/live` (server-sent events: status and thinned spike events every interval) and
// the dashboard (`/`), whose HTML, JS and CSS are compiled into the binary (no CDN, no build
// step). The routing loop never waits for it: it reads counters and takes from the LiveFeed.
// Every client costs bounded memory: one request of at most 8 KiB, and a live client holds at
// most the frame being written and the newest one (a slow browser gets fewer frames, counted).
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "ion/broker/broker.h"
#include "ion/broker/status_text.h"

namespace ion {

struct HttpOptions {
  std::string listen = "127.0.0.1:8080";  // host:port; port 0 picks a free one
  size_t max_clients = 64;
  std::chrono::milliseconds live_interval{250};
  std::chrono::milliseconds request_timeout{10000};  // a request not complete by then is dropped
  std::string web_root;  // serve the dashboard's files from this folder (development); empty: built in
};

class HttpServer {
 public:
  // Binds and starts serving. Throws std::runtime_error naming the address when it cannot.
  HttpServer(Broker& broker, HttpOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  [[nodiscard]] std::string endpoint() const;  // "127.0.0.1:PORT"
  [[nodiscard]] HttpFigures figures() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// What a request's head asks for: the part of the HTTP side with no socket (fuzzed by
// tests/fuzz/fuzz_http.cpp). Only "GET TARGET HTTP/1.x" on the first line is served; the target
// must be an absolute path.
struct HttpRoute {
  enum class Kind : uint8_t { metrics, status, live, file, bad_request, method_not_allowed };
  Kind kind = Kind::bad_request;
  bool topology = false;  // status: ?topology=1
  std::string path;       // file: the path asked for ("/" is "/index.html")
};
[[nodiscard]] HttpRoute route_request(std::string_view head);

// "host:port" with the port 1..65535 or 0; false for anything else.
[[nodiscard]] bool parse_host_port(const std::string& text, std::string& host, uint16_t& port);

}  // namespace ion
