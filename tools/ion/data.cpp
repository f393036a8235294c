#include "ion/data.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <memory>
#include <ostream>
#include <sstream>
#include <thread>

#include "ion/core/record.h"
#include "ion/interchange/dataset.h"
#include "ion/interchange/export.h"
#include "ion/interchange/import.h"
#include "ion/interchange/inspect.h"
#include "ion/node/node.h"
#include "ion/replay/replay_driver.h"

namespace ion {

int run_import(const ImportCommand& c, std::ostream& out) {
  if (c.sample_rate_hz < 0 || !std::isfinite(c.sample_rate_hz)) {
    throw std::runtime_error("ion import: --sample-rate must be a rate in Hz > 0");
  }
  interchange::ImportOptions o;
  o.source_name = c.name;
  o.sample_rate_hz = c.sample_rate_hz;
  const interchange::ImportResult r = interchange::import_file(c.format, c.input, o);
  interchange::write_recording(c.out, r.data);
  const auto& s = r.data.sources.front();
  out << "ion import: " << s.size() << " events on " << s.desc.channels() << " channels of '"
      << s.desc.name() << "' from " << c.input << " into " << c.out << "\n";
  for (const auto& n : r.notes) out << "  " << n << "\n";
  return 0;
}

int run_export(const ExportCommand& c, std::ostream& out) {
  if (c.sample_rate_hz < 0 || !std::isfinite(c.sample_rate_hz)) {
    throw std::runtime_error("ion export: --sample-rate must be a rate in Hz > 0");
  }
  interchange::LoadStats st;
  const interchange::Dataset d = interchange::load_recording(c.file, &st);
  if (st.torn) out << "ion export: " << c.file << " has a torn tail (" << st.tail_reason << "); exporting what precedes it\n";
  interchange::ExportOptions o;
  o.source = c.source;
  o.sample_rate_hz = c.sample_rate_hz;
  const interchange::ExportResult r = interchange::export_file(c.format, d, c.out, o);
  out << "ion export: " << r.events << " spikes of " << r.units << " units to " << c.out << " (" << c.format << ")\n";
  for (const auto& n : r.notes) out << "  " << n << "\n";
  return 0;
}

int run_inspect(const InspectCommand& c, std::ostream& out) {
  if (c.repair) {
    const uint64_t cut = record::repair(c.file);
    out << "ion inspect: " << (cut == 0 ? std::string("nothing to repair") : "cut a torn tail of " + std::to_string(cut) + " bytes")
        << " in " << c.file << "\n";
  }
  const interchange::Inspection x = interchange::inspect(c.file);
  if (c.json) {
    interchange::print_json(x, out);
  } else {
    interchange::print_text(x, out);
  }
  return 0;
}

namespace {

std::string fmt_number(double x) {
  std::ostringstream s;
  s << x;
  return s.str();
}

std::map<uint32_t, uint32_t> parse_remap(const std::string& s) {
  std::map<uint32_t, uint32_t> m;
  size_t i = 0;
  while (i < s.size()) {
    const size_t comma = s.find(',', i);
    const std::string pair = s.substr(i, comma == std::string::npos ? std::string::npos : comma - i);
    const size_t colon = pair.find(':');
    uint32_t from = 0;
    uint32_t to = 0;
    try {
      if (colon == std::string::npos) throw std::invalid_argument(pair);
      size_t used_from = 0;
      size_t used_to = 0;
      const std::string a = pair.substr(0, colon);
      const std::string b = pair.substr(colon + 1);
      const unsigned long f = std::stoul(a, &used_from);
      const unsigned long t = std::stoul(b, &used_to);
      if (used_from != a.size() || used_to != b.size() || a.front() == '-' || b.front() == '-' ||
          f > UINT32_MAX - 1 || t > UINT32_MAX - 1) {
        throw std::invalid_argument(pair);
      }
      from = static_cast<uint32_t>(f);
      to = static_cast<uint32_t>(t);
    } catch (const std::exception&) {
      throw std::runtime_error("--remap: expected FROM:TO[,FROM:TO...] with channel numbers, got '" + pair + "'");
    }
    if (!m.emplace(from, to).second) {
      throw std::runtime_error("--remap: channel " + std::to_string(from) + " is mapped twice");
    }
    if (comma == std::string::npos) break;
    i = comma + 1;
  }
  return m;
}

// A remap must name channels the source has, and must not merge two channels into one (their
// spikes would become one unit's) unless the user asked for it.
void check_remap(const std::map<uint32_t, uint32_t>& remap, const interchange::SourceData& s,
                 bool allow_merge) {
  if (remap.empty()) return;
  std::vector<uint8_t> present(s.desc.channels(), 0);
  for (const uint32_t ch : s.channels) {
    if (ch < present.size()) present[ch] = 1;
  }
  std::map<uint32_t, uint32_t> target_of;  // emitted channel -> recorded channel feeding it
  for (uint32_t ch = 0; ch < present.size(); ++ch) {
    if (present[ch] != 0 && !remap.contains(ch)) target_of[ch] = ch;
  }
  for (const auto& [from, to] : remap) {
    if (from >= s.desc.channels()) {
      throw std::runtime_error("--remap: channel " + std::to_string(from) + " is not a channel of '" +
                               s.desc.name() + "' (0-" + std::to_string(s.desc.channels() - 1) + ")");
    }
    if (present[from] == 0) continue;
    const auto [it, fresh] = target_of.emplace(to, from);
    if (!fresh && !allow_merge) {
      throw std::runtime_error("--remap: channels " + std::to_string(it->second) + " and " +
                               std::to_string(from) + " of '" + s.desc.name() +
                               "' would both become channel " + std::to_string(to) +
                               " (give --merge to merge them)");
    }
  }
}

}  // namespace

int run_replay(const ReplayCommand& c, const std::atomic<bool>& stop, std::ostream& out) {
  if (c.broker.empty() == c.to.empty()) throw std::runtime_error("ion replay: give exactly one of --broker or --to");
  if (!(c.speed >= 0.001 && c.speed <= 1000)) {
    throw std::runtime_error("ion replay: --speed must be within 0.001-1000, got " + fmt_number(c.speed));
  }
  if (!(c.start_s >= 0) || !std::isfinite(c.start_s)) {
    throw std::runtime_error("ion replay: --start must be a number of seconds >= 0");
  }
  if (!(c.end_s >= 0) || !std::isfinite(c.end_s)) {
    throw std::runtime_error("ion replay: --end must be a number of seconds >= 0 (0: to the end)");
  }
  replay::ReplayOptions base;
  base.speed = c.speed;
  base.from_ns = static_cast<int64_t>(std::llround(c.start_s * 1e9));
  if (c.end_s > 0) base.to_ns = static_cast<int64_t>(std::llround(c.end_s * 1e9));
  if (base.to_ns <= base.from_ns) throw std::runtime_error("ion replay: --end must come after --start");
  base.loop = c.loop;
  base.remap = parse_remap(c.remap);
  interchange::LoadStats st;
  interchange::Dataset d = interchange::load_recording(c.file, &st, c.source);
  if (st.torn) out << "ion replay: " << c.file << " has a torn tail (" << st.tail_reason << "); replaying what precedes it\n";
  std::vector<interchange::SourceData*> sources;
  for (auto& s : d.sources) {
    if (s.kind == EventKind::spike && s.size() > 0) sources.push_back(&s);
  }
  if (sources.empty()) throw std::runtime_error(c.file + ": nothing to replay" + (c.source.empty() ? "" : " from '" + c.source + "'"));
  if (!c.as.empty() && sources.size() != 1) throw std::runtime_error("ion replay: --as needs exactly one source (use --source)");
  int64_t span_ns = 0;
  for (const auto* s : sources) {
    check_remap(base.remap, *s, c.merge);
    span_ns = std::max(span_ns, s->times_ns.back() - s->times_ns.front());
  }
  if (base.from_ns > span_ns) {
    throw std::runtime_error("ion replay: --start " + fmt_number(c.start_s) + " s is beyond the end of " +
                             c.file + " (its events span " + fmt_number(static_cast<double>(span_ns) / 1e9) + " s)");
  }

  if (!c.to.empty()) {
    if (c.loop) throw std::runtime_error("ion replay: --loop has no end; it cannot go --to a file");
    interchange::Dataset o;
    o.header = d.header;
    o.header.set_origin("ion replay " + c.file);
    o.header.clear_sources();
    for (auto* s : sources) {
      const int64_t first = s->times_ns.front();
      interchange::SourceData r = *s;
      r.channels.clear();
      r.times_ns.clear();
      r.payload.clear();
      // Same stamps as a live replay started at the recording's first event.
      const auto& ev = s->times_ns;
      for (size_t i = 0; i < ev.size(); ++i) {
        const int64_t rel = ev[i] - first;
        if (rel < base.from_ns || rel >= base.to_ns) continue;
        uint32_t ch = s->channels[i];
        if (auto it = base.remap.find(ch); it != base.remap.end()) ch = it->second;
        r.channels.push_back(ch);
        r.times_ns.push_back(first + static_cast<int64_t>(std::llround(static_cast<double>(rel - base.from_ns) / c.speed)));
        if (!s->payload.empty()) r.payload.push_back(s->payload[i]);
      }
      uint32_t top = base.remap.empty() ? s->desc.channels() : 0;
      for (const uint32_t ch : r.channels) top = std::max(top, ch + 1);
      r.desc.set_channels(top);
      if (!c.as.empty()) r.desc.set_name(c.as);
      *o.header.add_sources() = r.desc;
      o.sources.push_back(std::move(r));
    }
    interchange::write_recording(c.to, o);
    uint64_t n = 0;
    for (const auto& s : o.sources) n += s.size();
    out << "ion replay: " << n << " events of " << o.sources.size() << " sources into " << c.to << "\n";
    return 0;
  }

  // Live: one node per source, all starting their first event at the same network time.
  struct Player {
    replay::ReplayDriver* driver;
    std::unique_ptr<Node> node;
    std::thread thread;
    std::string name;
  };
  std::vector<Player> players;
  for (auto* s : sources) {
    replay::ReplayEvents e{s->channels, s->times_ns, s->payload, s->kind, s->desc.channels()};
    auto drv = std::make_unique<replay::ReplayDriver>(base, std::move(e));
    NodeOptions no;
    no.name = c.as.empty() ? s->desc.name() : c.as;
    no.broker = c.broker;
    no.curve = c.curve;
    Player p{drv.get(), nullptr, {}, no.name};
    p.node = std::make_unique<Node>(no, std::move(drv));
    players.push_back(std::move(p));
  }
  for (auto& p : players) {
    Node* n = p.node.get();
    p.thread = std::thread([n] { n->run(); });
  }
  auto stop_all = [&] {
    for (auto& p : players) p.node->stop();
    for (auto& p : players) {
      if (p.thread.joinable()) p.thread.join();
    }
  };
  for (auto& p : players) {
    Refusal refusal;
    const Registration r = p.node->wait_registration(1, std::chrono::seconds(10), &refusal);
    if (r != Registration::registered) {
      out << "ion replay: node '" << p.name << "': "
          << (r == Registration::refused ? refusal.reason
                                         : "no answer from " + c.broker + " within 10 s (is the broker running there?)")
          << "\n";
      stop_all();
      return 2;
    }
  }
  const int64_t start = players.front().node->clock_estimate(SteadyClock::instance().now_ns()).offset_ns +
                        SteadyClock::instance().now_ns() + 300'000'000;
  // Each node's driver maps this network time through its own clock estimate.
  for (auto& p : players) p.driver->set_start_network_ns(start);
  out << "ion replay: " << players.size() << " source(s) from " << c.file << " into " << c.broker
      << " at speed " << c.speed << (c.loop ? ", looping" : "") << "\n";
  out.flush();
  while (!stop.load()) {
    bool all = true;
    for (auto& p : players) all = all && p.driver->finished();
    if (all) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // Let the nodes hand what they emitted to the broker before saying goodbye.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    bool sent = true;
    for (auto& p : players) {
      const NodeStats s = p.node->stats();
      sent = sent && s.sent_batches + s.dropped_batches >= s.emitted_batches;
    }
    if (sent) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stop_all();
  for (auto& p : players) {
    const NodeStats s = p.node->stats();
    out << "  " << std::left << std::setw(20) << p.name << std::right << " emitted " << p.driver->emitted()
        << " of " << p.driver->size() << " events; worst emission lag "
        << std::fixed << std::setprecision(3) << static_cast<double>(p.driver->max_emit_lag_ns()) / 1e6
        << " ms; dropped " << s.dropped_events << "\n";
  }
  return 0;
}

}  // namespace ion
