#pragma once
// Small SVG helpers of the HTML report (report.cpp, report_fc.cpp): escaping, numbers, axes.
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

namespace ion::svg {

inline std::string esc(const std::string& s) {
  std::string o;
  for (const char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

inline std::string num(double v, int prec = 2) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

struct Axis {
  double lo = 0;
  double hi = 1;
  double px_lo = 0;
  double px_hi = 1;
  [[nodiscard]] double at(double v) const {
    return hi > lo ? px_lo + (v - lo) / (hi - lo) * (px_hi - px_lo) : px_lo;
  }
};

// Ticks at 1, 2 or 5 times a power of ten, about n of them.
inline std::vector<double> ticks(double lo, double hi, int n = 6) {
  std::vector<double> t;
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / n;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  const double step = raw / p < 2 ? 2 * p : (raw / p < 5 ? 5 * p : 10 * p);
  for (double v = std::ceil(lo / step) * step; v <= hi + 1e-12; v += step) t.push_back(v);
  return t;
}

inline void x_axis(std::ostringstream& s, const Axis& x, double y, const std::string& label, int prec = 1) {
  s << "<line x1='" << x.px_lo << "' y1='" << y << "' x2='" << x.px_hi << "' y2='" << y << "' stroke='#444'/>";
  for (double v : ticks(x.lo, x.hi)) {
    const double px = x.at(v);
    s << "<line x1='" << num(px) << "' y1='" << y << "' x2='" << num(px) << "' y2='" << y + 4 << "' stroke='#444'/>"
      << "<text x='" << num(px) << "' y='" << y + 16 << "' text-anchor='middle'>" << num(v, prec) << "</text>";
  }
  s << "<text x='" << (x.px_lo + x.px_hi) / 2 << "' y='" << y + 32 << "' text-anchor='middle'>" << esc(label) << "</text>";
}

inline void y_axis(std::ostringstream& s, const Axis& y, double x, const std::string& label, int prec = 2) {
  s << "<line x1='" << x << "' y1='" << y.px_lo << "' x2='" << x << "' y2='" << y.px_hi << "' stroke='#444'/>";
  for (double v : ticks(y.lo, y.hi, 4)) {
    const double py = y.at(v);
    s << "<line x1='" << x - 4 << "' y1='" << num(py) << "' x2='" << x << "' y2='" << num(py) << "' stroke='#444'/>"
      << "<text x='" << x - 6 << "' y='" << num(py + 4) << "' text-anchor='end'>" << num(v, prec) << "</text>";
  }
  s << "<text transform='translate(" << x - 48 << "," << (y.px_lo + y.px_hi) / 2
    << ") rotate(-90)' text-anchor='middle'>" << esc(label) << "</text>";
}

}  // namespace ion::svg
