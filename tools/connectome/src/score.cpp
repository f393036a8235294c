// Map and wiring files, and scoring.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "ion/connectome/connectome.h"

namespace ion::connectome {
namespace {

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> f;
  std::string cur;
  for (char ch : line) {
    if (ch == ',') {
      f.push_back(cur);
      cur.clear();
    } else if (ch != '\r') {
      cur.push_back(ch);
    }
  }
  f.push_back(cur);
  return f;
}

double number(const std::string& s, const std::string& where) {
  try {
    size_t used = 0;
    const double v = std::stod(s, &used);
    if (used != s.size() || !std::isfinite(v)) throw std::invalid_argument(s);
    return v;
  } catch (const std::exception&) {
    throw std::runtime_error(where + ": '" + s + "' is not a number");
  }
}

// Reads a CSV with a header naming at least `need`; calls row(fields by name) for each line.
template <typename Row>
void read_csv(const std::string& path, const std::vector<std::string>& need, Row row) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot be read");
  std::string line;
  std::map<std::string, size_t> col;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    const auto f = split_csv(line);
    const std::string where = path + ":" + std::to_string(lineno);
    if (col.empty()) {
      for (size_t i = 0; i < f.size(); ++i) col[f[i]] = i;
      for (const auto& n : need) {
        if (!col.count(n)) throw std::runtime_error(where + ": the header has no '" + n + "' column");
      }
      continue;
    }
    if (f.size() != col.size()) {
      throw std::runtime_error(where + ": " + std::to_string(f.size()) + " fields, the header has " +
                               std::to_string(col.size()));
    }
    row([&](const std::string& name) -> const std::string& { return f[col.at(name)]; }, where);
  }
  if (col.empty()) throw std::runtime_error(path + ": empty (no header line)");
}

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s.precision(digits);
  s << v;
  return s.str();
}

}  // namespace

void write_map(std::ostream& out, const ConnectivityMap& m, bool all) {
  out << "# ion connectome map: method " << to_string(m.method) << ", bin " << m.bin_ms << " ms\n";
  out << "# channels:";
  for (const auto& c : m.channels) out << ' ' << c;
  out << "\npre,post,strength,sign,delay_ms,confidence,significant\n";
  const size_t n = m.n();
  for (size_t pre = 0; pre < n; ++pre) {
    for (size_t post = 0; post < n; ++post) {
      const size_t i = m.at(pre, post);
      if (!m.scored[i] || (!all && !m.significant[i])) continue;
      const float s = m.strength[i];
      out << m.channels[pre] << ',' << m.channels[post] << ',' << fixed(s, 6) << ','
          << (s > 0 ? 1 : s < 0 ? -1 : 0) << ',' << fixed(m.delay_ms[i], 6) << ','
          << fixed(m.confidence[i], 5) << ',' << int{m.significant[i]} << '\n';
    }
  }
}

std::vector<MapEdge> read_map(const std::string& path) {
  std::vector<MapEdge> edges;
  read_csv(path, {"pre", "post", "strength", "delay_ms"}, [&](const auto& f, const std::string& where) {
    MapEdge e;
    e.pre = f("pre");
    e.post = f("post");
    e.strength = number(f("strength"), where);
    e.delay_ms = number(f("delay_ms"), where);
    try {
      e.confidence = number(f("confidence"), where);
    } catch (const std::out_of_range&) {
    }
    try {
      e.significant = f("significant") == "1";
    } catch (const std::out_of_range&) {
      e.significant = e.strength != 0;
    }
    edges.push_back(std::move(e));
  });
  return edges;
}

std::vector<MapEdge> edges_of(const ConnectivityMap& m) {
  std::vector<MapEdge> edges;
  for (size_t pre = 0; pre < m.n(); ++pre) {
    for (size_t post = 0; post < m.n(); ++post) {
      const size_t i = m.at(pre, post);
      if (!m.scored[i]) continue;
      edges.push_back({m.channels[pre], m.channels[post], m.strength[i], m.delay_ms[i], m.confidence[i],
                       m.significant[i] != 0});
    }
  }
  return edges;
}

std::vector<std::string> map_channels(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line) && !line.empty() && line[0] == '#') {
    const std::string key = "# channels:";
    if (line.rfind(key, 0) == 0) {
      std::istringstream s(line.substr(key.size()));
      std::vector<std::string> names;
      for (std::string n; s >> n;) names.push_back(n);
      return names;
    }
  }
  std::set<std::string> names;
  for (const auto& e : read_map(path)) {
    names.insert(e.pre);
    names.insert(e.post);
  }
  return {names.begin(), names.end()};
}

void write_truth(std::ostream& out, const std::vector<TrueEdge>& edges, const std::string& comment) {
  if (!comment.empty()) out << "# " << comment << '\n';
  out << "pre,post,weight,delay_ms,sign\n";
  for (const auto& e : edges) {
    out << e.pre << ',' << e.post << ',' << fixed(e.weight, 6) << ',' << fixed(e.delay_ms, 6) << ','
        << e.sign << '\n';
  }
}

std::vector<TrueEdge> read_truth(const std::string& path) {
  std::vector<TrueEdge> edges;
  read_csv(path, {"pre", "post", "weight", "delay_ms", "sign"}, [&](const auto& f, const std::string& where) {
    TrueEdge e;
    e.pre = f("pre");
    e.post = f("post");
    e.weight = number(f("weight"), where);
    e.delay_ms = number(f("delay_ms"), where);
    const double s = number(f("sign"), where);
    if (s != 1 && s != -1) throw std::runtime_error(where + ": sign must be 1 or -1");
    e.sign = static_cast<int>(s);
    edges.push_back(std::move(e));
  });
  return edges;
}

double roc_auc(std::vector<double> pos, std::vector<double> neg) {
  if (pos.empty() || neg.empty()) return 0;
  std::sort(neg.begin(), neg.end());
  double wins = 0;
  for (double p : pos) {
    const auto lo = std::lower_bound(neg.begin(), neg.end(), p);
    const auto hi = std::upper_bound(lo, neg.end(), p);
    wins += static_cast<double>(lo - neg.begin()) + 0.5 * static_cast<double>(hi - lo);
  }
  return wins / (static_cast<double>(pos.size()) * static_cast<double>(neg.size()));
}

Score score(const std::vector<MapEdge>& map, const std::vector<std::string>& channels,
            const std::vector<TrueEdge>& truth) {
  Score sc;
  std::set<std::string> universe;
  for (const auto& e : truth) {
    universe.insert(e.pre);
    universe.insert(e.post);
  }
  std::vector<std::string> used;
  for (const auto& c : channels) {
    if (universe.count(c)) {
      used.push_back(c);
    } else {
      sc.unknown_channels.push_back(c);
    }
  }
  if (used.empty()) throw std::invalid_argument("the wiring names none of the map's channels");
  std::unordered_map<std::string, size_t> idx;
  for (size_t i = 0; i < used.size(); ++i) idx[used[i]] = i;
  const size_t n = used.size();
  sc.channels = n;
  std::vector<double> strength(n * n, 0), delay(n * n, 0);
  std::vector<uint8_t> sig(n * n, 0);
  for (const auto& e : map) {
    const auto a = idx.find(e.pre);
    const auto b = idx.find(e.post);
    if (a == idx.end() || b == idx.end()) continue;
    const size_t i = a->second * n + b->second;
    strength[i] = e.strength;
    delay[i] = e.delay_ms;
    sig[i] = e.significant ? 1 : 0;
  }
  std::vector<int> true_sign(n * n, 0);
  std::vector<double> true_delay(n * n, 0);
  for (const auto& e : truth) {
    const auto a = idx.find(e.pre);
    const auto b = idx.find(e.post);
    if (a == idx.end() || b == idx.end() || a->second == b->second) continue;
    true_sign[a->second * n + b->second] = e.sign;
    true_delay[a->second * n + b->second] = e.delay_ms;
  }
  std::vector<double> exc, not_exc, inh, not_inh, any, none;
  double sign_ok = 0, delay_err = 0;
  for (size_t i = 0; i < n * n; ++i) {
    if (i / n == i % n) continue;
    ++sc.pairs;
    const double s = strength[i];
    (true_sign[i] > 0 ? exc : not_exc).push_back(s);
    (true_sign[i] < 0 ? inh : not_inh).push_back(-s);
    (true_sign[i] != 0 ? any : none).push_back(std::fabs(s));
    if (sig[i]) {
      ++sc.predicted;
      if (true_sign[i] != 0) {
        ++sc.true_positive;
        sign_ok += (s > 0) == (true_sign[i] > 0) ? 1 : 0;
        delay_err += std::fabs(delay[i] - true_delay[i]);
      }
    }
  }
  sc.true_excitatory = exc.size();
  sc.true_inhibitory = inh.size();
  sc.auc_excitatory = roc_auc(exc, not_exc);
  sc.auc_inhibitory = roc_auc(inh, not_inh);
  sc.auc_any = roc_auc(any, none);
  const size_t connected = exc.size() + inh.size();
  sc.precision = sc.predicted ? static_cast<double>(sc.true_positive) / static_cast<double>(sc.predicted) : 0;
  sc.recall = connected ? static_cast<double>(sc.true_positive) / static_cast<double>(connected) : 0;
  sc.sign_accuracy = sc.true_positive ? sign_ok / static_cast<double>(sc.true_positive) : 0;
  sc.delay_error_ms = sc.true_positive ? delay_err / static_cast<double>(sc.true_positive) : 0;
  return sc;
}

}  // namespace ion::connectome
