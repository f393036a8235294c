#include "ion/broker/http.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <asio.hpp>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "ion/core/counter.h"
#include "ion/core/json.h"
#include "ion/core/security.h"
#include "ion/v1/ion.pb.h"

namespace ion {

// The dashboard's files, compiled in (cmake/EmbedWeb.cmake writes web_assets.cpp).
struct WebAsset {
  const char* path;
  const char* content_type;
  const unsigned char* data;
  size_t size;
};
extern const WebAsset kWebAssets[];
extern const size_t kWebAssetCount;

HttpRoute route_request(std::string_view head) {
  HttpRoute r;
  const std::string_view line = head.substr(0, head.find_first_of("\r\n"));
  // Exactly three fields separated by single spaces: METHOD TARGET VERSION.
  const size_t a = line.find(' ');
  const size_t b = a == std::string_view::npos ? a : line.find(' ', a + 1);
  if (a == std::string_view::npos || b == std::string_view::npos ||
      line.find(' ', b + 1) != std::string_view::npos) {
    return r;
  }
  const std::string_view method = line.substr(0, a);
  const std::string_view target = line.substr(a + 1, b - a - 1);
  const std::string_view version = line.substr(b + 1);
  if (!version.starts_with("HTTP/1.") || target.empty() || target.front() != '/') return r;
  if (method != "GET") {
    r.kind = HttpRoute::Kind::method_not_allowed;
    return r;
  }
  const std::string_view path = target.substr(0, target.find('?'));
  const std::string_view query = target.size() > path.size() ? target.substr(path.size() + 1) : "";
  if (path == "/metrics") {
    r.kind = HttpRoute::Kind::metrics;
  } else if (path == "/api/status") {
    r.kind = HttpRoute::Kind::status;
    r.topology = query.find("topology=1") != std::string_view::npos;
  } else if (path == "/api/live") {
    r.kind = HttpRoute::Kind::live;
  } else {
    r.kind = HttpRoute::Kind::file;
    r.path = path == "/" ? "/index.html" : std::string(path);
  }
  return r;
}

bool parse_host_port(const std::string& text, std::string& host, uint16_t& port) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= text.size()) return false;
  host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string p = text.substr(colon + 1);
  if (p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) return false;
  const int v = std::stoi(p);
  if (v > 65535) return false;
  port = static_cast<uint16_t>(v);
  return true;
}

namespace {

using asio::ip::tcp;
constexpr size_t kMaxRequestBytes = 8192;

std::string response(int code, const char* reason, const std::string& type, const std::string& body) {
  std::ostringstream r;
  r << "HTTP/1.1 " << code << ' ' << reason << "\r\nContent-Type: " << type
    << "\r\nContent-Length: " << body.size()
    << "\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n"
    << body;
  return r.str();
}

}  // namespace

class HttpServer::Impl {
 public:
  Impl(Broker& broker, HttpOptions o) : broker_(broker), o_(std::move(o)), acceptor_(io_), ticker_(io_) {
    std::string host;
    uint16_t port = 0;
    if (!parse_host_port(o_.listen, host, port)) {
      throw std::runtime_error("--http '" + o_.listen + "': expected HOST:PORT, e.g. 127.0.0.1:8080");
    }
    try {
      const tcp::endpoint ep(asio::ip::make_address(host), port);
      acceptor_.open(ep.protocol());
      acceptor_.set_option(tcp::acceptor::reuse_address(true));
      acceptor_.bind(ep);
      acceptor_.listen();
      const tcp::endpoint bound = acceptor_.local_endpoint();
      endpoint_ = (bound.address().is_v6() ? "[" + bound.address().to_string() + "]"
                                           : bound.address().to_string()) +
                  ":" + std::to_string(bound.port());
    } catch (const std::exception& e) {
      throw std::runtime_error("cannot serve HTTP on '" + o_.listen + "': " + e.what());
    }
    if (!local_only_endpoint("tcp://" + endpoint_)) {
      spdlog::warn("the dashboard and metrics on http://{} are readable by anyone who can reach "
                   "this address (no authentication on HTTP; see docs/dashboard.md)",
                   endpoint_);
    }
    spdlog::info("dashboard on http://{}/ (metrics: /metrics, status: /api/status)", endpoint_);
    accept();
    tick();
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "ion-http");
      io_.run();
    });
  }

  ~Impl() {
    io_.stop();
    if (thread_.joinable()) thread_.join();
    if (live_watching_) broker_.live().watch(false);
  }

  [[nodiscard]] const std::string& endpoint() const { return endpoint_; }

  [[nodiscard]] HttpFigures figures() const {
    HttpFigures f;
    f.clients = clients_.load();
    f.live_clients = live_count_.load();
    f.requests = requests_.get();
    f.refused = refused_.get();
    f.frames_skipped = frames_skipped_.get();
    f.events_thinned = broker_.live().thinned();
    return f;
  }

 private:
  struct Session : std::enable_shared_from_this<Session> {
    Session(Impl& s, tcp::socket sock) : server(s), socket(std::move(sock)), deadline(s.io_) {}
    Impl& server;
    tcp::socket socket;
    asio::steady_timer deadline;
    asio::streambuf request{kMaxRequestBytes};
    bool live = false;
    bool writing = false;
    std::shared_ptr<const std::string> in_flight;
    std::shared_ptr<const std::string> pending;  // newest frame not yet sent
    char sink[64];
  };

  void accept() {
    acceptor_.async_accept([this](std::error_code ec, tcp::socket sock) {
      if (ec) {
        if (ec != asio::error::operation_aborted) accept();
        return;
      }
      if (clients_.load() >= o_.max_clients) {
        refused_.add();
        auto msg = std::make_shared<std::string>(response(503, "Service Unavailable", "text/plain", "too many clients\n"));
        auto s = std::make_shared<tcp::socket>(std::move(sock));
        asio::async_write(*s, asio::buffer(*msg), [s, msg](std::error_code, size_t) {
          std::error_code ignored;
          s->close(ignored);
        });
      } else {
        start(std::make_shared<Session>(*this, std::move(sock)));
      }
      accept();
    });
  }

  void start(const std::shared_ptr<Session>& s) {
    clients_.fetch_add(1);
    s->deadline.expires_after(o_.request_timeout);
    s->deadline.async_wait([s](std::error_code ec) {
      if (!ec && !s->live) {
        s->server.refused_.add();
        s->server.close(s);
      }
    });
    asio::async_read_until(s->socket, s->request, "\r\n\r\n", [this, s](std::error_code ec, size_t) {
      if (ec) {
        if (ec == asio::error::not_found) refused_.add();  // larger than kMaxRequestBytes
        close(s);
        return;
      }
      serve(s);
    });
  }

  void close(const std::shared_ptr<Session>& s) {
    if (!s->socket.is_open()) return;
    std::error_code ignored;
    s->deadline.cancel();
    s->socket.shutdown(tcp::socket::shutdown_both, ignored);
    s->socket.close(ignored);
    clients_.fetch_sub(1);
    if (s->live) {
      live_.erase(s);
      live_count_.store(live_.size());
      if (live_.empty() && live_watching_) {
        broker_.live().watch(false);
        live_watching_ = false;
      }
    }
  }

  void reply(const std::shared_ptr<Session>& s, std::string text) {
    auto msg = std::make_shared<std::string>(std::move(text));
    asio::async_write(s->socket, asio::buffer(*msg), [this, s, msg](std::error_code, size_t) { close(s); });
  }

  void serve(const std::shared_ptr<Session>& s) {
    const auto data = s->request.data();
    const std::string head(asio::buffers_begin(data), asio::buffers_end(data));
    requests_.add();
    const HttpRoute r = route_request(head);
    switch (r.kind) {
      case HttpRoute::Kind::bad_request:
        refused_.add();
        reply(s, response(400, "Bad Request", "text/plain", "not an HTTP/1 request\n"));
        return;
      case HttpRoute::Kind::method_not_allowed:
        reply(s, response(405, "Method Not Allowed", "text/plain", "only GET\n"));
        return;
      case HttpRoute::Kind::metrics: {
        v1::StatusReply st;
        broker_.status(st);
        const HttpFigures f = figures();
        reply(s, response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", prometheus_metrics(st, &f)));
        return;
      }
      case HttpRoute::Kind::status: {
        v1::StatusReply st;
        broker_.status(st, r.topology);
        reply(s, response(200, "OK", "application/json", status_json(st)));
        return;
      }
      case HttpRoute::Kind::live: start_live(s); return;
      case HttpRoute::Kind::file: serve_file(s, r.path); return;
    }
  }

  void serve_file(const std::shared_ptr<Session>& s, const std::string& path) {
    for (size_t i = 0; i < kWebAssetCount; ++i) {
      const WebAsset& a = kWebAssets[i];
      if (path != a.path) continue;
      std::string body(reinterpret_cast<const char*>(a.data), a.size);
      if (!o_.web_root.empty()) {  // development: the files on disk win
        std::ifstream f(o_.web_root + a.path, std::ios::binary);
        if (f) body.assign(std::istreambuf_iterator<char>(f), {});
      }
      reply(s, response(200, "OK", a.content_type, body));
      return;
    }
    reply(s, response(404, "Not Found", "text/plain", "no such page\n"));
  }

  void start_live(const std::shared_ptr<Session>& s) {
    s->live = true;
    s->deadline.cancel();
    // The kernel's share of a slow client's backlog is bounded too (loopback autotunes to MBs).
    std::error_code ignored;
    s->socket.set_option(asio::socket_base::send_buffer_size(64 * 1024), ignored);
    live_.insert(s);
    live_count_.store(live_.size());
    if (!live_watching_) {
      broker_.live().watch(true);
      live_watching_ = true;
    }
    send(s, std::make_shared<const std::string>(
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
                "X-Accel-Buffering: no\r\nConnection: keep-alive\r\n\r\nretry: 2000\n\n"));
    watch_hangup(s);
  }

  // A live client sends nothing after its request: a completed read means it hung up.
  void watch_hangup(const std::shared_ptr<Session>& s) {
    s->socket.async_read_some(asio::buffer(s->sink), [this, s](std::error_code ec, size_t) {
      if (ec) {
        close(s);
      } else {
        watch_hangup(s);
      }
    });
  }

  void send(const std::shared_ptr<Session>& s, std::shared_ptr<const std::string> frame) {
    if (!s->socket.is_open()) return;
    if (s->writing) {
      if (s->pending) frames_skipped_.add();  // the browser is slow: it gets the newer frame only
      s->pending = std::move(frame);
      return;
    }
    s->writing = true;
    s->in_flight = std::move(frame);
    asio::async_write(s->socket, asio::buffer(*s->in_flight), [this, s](std::error_code ec, size_t) {
      s->writing = false;
      s->in_flight.reset();
      if (ec) {
        close(s);
        return;
      }
      if (s->pending) send(s, std::exchange(s->pending, nullptr));
    });
  }

  void tick() {
    ticker_.expires_after(o_.live_interval);
    ticker_.async_wait([this](std::error_code ec) {
      if (ec) return;
      if (!live_.empty()) {
        auto frame = std::make_shared<const std::string>(live_frame());
        for (const auto& s : live_) send(s, frame);
      }
      tick();
    });
  }

  // One server-sent event: the status and the spike events kept since the previous frame.
  std::string live_frame() {
    v1::StatusReply r;
    broker_.status(r);
    broker_.live().take(events_, samples_);
    std::ostringstream f;
    f << "data: {\"status\":" << status_json(r) << ",\"events\":{";
    for (int i = 0; i < r.nodes_size() && i < static_cast<int>(events_.size()); ++i) {
      const auto& ev = events_[static_cast<size_t>(i)];
      // Times in microseconds after t0: a third of the bytes of nanoseconds since the epoch.
      const int64_t t0 = ev.empty() ? 0 : ev.front().time_ns;
      f << (i == 0 ? "" : ",") << '"' << json_escape(r.nodes(i).name()) << "\":{\"t0\":" << t0 << ",\"us\":[";
      for (size_t k = 0; k < ev.size(); ++k) f << (k ? "," : "") << (ev[k].time_ns - t0) / 1000;
      f << "],\"ch\":[";
      for (size_t k = 0; k < ev.size(); ++k) f << (k ? "," : "") << ev[k].channel;
      f << "]}";
    }
    // Neuromodulator samples, all of them: {"node": {"t0", "us", "ch", "v"}}.
    f << "},\"samples\":{";
    bool first_node = true;
    for (int i = 0; i < r.nodes_size() && i < static_cast<int>(samples_.size()); ++i) {
      const auto& sv = samples_[static_cast<size_t>(i)];
      if (sv.empty()) continue;
      const int64_t t0 = sv.front().time_ns;
      f << (first_node ? "" : ",") << '"' << json_escape(r.nodes(i).name()) << "\":{\"t0\":" << t0 << ",\"us\":[";
      first_node = false;
      for (size_t k = 0; k < sv.size(); ++k) f << (k ? "," : "") << (sv[k].time_ns - t0) / 1000;
      f << "],\"ch\":[";
      for (size_t k = 0; k < sv.size(); ++k) f << (k ? "," : "") << sv[k].channel;
      f << "],\"v\":[";
      for (size_t k = 0; k < sv.size(); ++k) {
        f << (k ? "," : "") << (std::isfinite(sv[k].value) ? std::to_string(sv[k].value) : std::string("null"));
      }
      f << "]}";
    }
    const HttpFigures hf = figures();
    f << "},\"http\":{\"clients\":" << hf.clients << ",\"live_clients\":" << hf.live_clients
      << ",\"frames_skipped\":" << hf.frames_skipped << ",\"events_thinned\":" << hf.events_thinned
      << "}}\n\n";
    return f.str();
  }

  Broker& broker_;
  const HttpOptions o_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  asio::steady_timer ticker_;
  std::string endpoint_;
  std::set<std::shared_ptr<Session>> live_;  // the io thread's only
  bool live_watching_ = false;
  std::vector<std::vector<LiveEvent>> events_;
  std::vector<std::vector<LiveSample>> samples_;
  std::atomic<uint64_t> clients_{0};
  std::atomic<uint64_t> live_count_{0};
  Counter requests_, refused_, frames_skipped_;
  std::thread thread_;
};

HttpServer::HttpServer(Broker& broker, HttpOptions options)
    : impl_(std::make_unique<Impl>(broker, std::move(options))) {}
HttpServer::~HttpServer() = default;
std::string HttpServer::endpoint() const { return impl_->endpoint(); }
HttpFigures HttpServer::figures() const { return impl_->figures(); }

}  // namespace ion
