// The report's functional-connectivity section: copy against paste (report.h).
#include <algorithm>
#include <cmath>
#include <limits>

#include "cli/report.h"
#include "cli/svg.h"

namespace ion {
namespace {

using svg::Axis;
using svg::esc;
using svg::num;

// White (0) to dark blue (the scale's top); grey where undefined.
std::string shade(double v, double top) {
  if (std::isnan(v)) return "#ddd";
  const double f = std::clamp(top > 0 ? v / top : 0.0, 0.0, 1.0);
  const auto c = [&](double white, double dark) { return static_cast<int>(std::lround(white + f * (dark - white))); };
  char b[8];
  std::snprintf(b, sizeof b, "#%02x%02x%02x", c(255, 8), c(255, 48), c(255, 107));
  return b;
}

// The matrices are drawn up to this many channels (a cell per pair); beyond, only the scatter.
constexpr size_t kMaxMatrixChannels = 128;

void matrix(std::ostringstream& h, const std::vector<double>& m, size_t n, double top, const std::string& title) {
  const double size = 300;
  const double cell = size / static_cast<double>(n);
  h << "<svg width='" << size + 60 << "' height='" << size + 40 << "' role='img' aria-label='" << esc(title)
    << "'><text x='40' y='14' font-weight='bold'>" << esc(title) << "</text><g transform='translate(40,22)'>";
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < n; ++j) {
      if (i == j) continue;
      h << "<rect x='" << num(static_cast<double>(j) * cell, 1) << "' y='" << num(static_cast<double>(i) * cell, 1)
        << "' width='" << num(cell + 0.2, 2) << "' height='" << num(cell + 0.2, 2) << "' fill='" << shade(m[i * n + j], top)
        << "'/>";
    }
  }
  h << "</g><text x='36' y='" << 30 << "' text-anchor='end'>0</text><text x='36' y='" << num(size + 22, 0)
    << "' text-anchor='end'>" << n - 1 << "</text></svg>";
}

}  // namespace

size_t write_fc_section(std::ostringstream& h, const FcComparison& fc) {
  const size_t n = fc.channels.size();
  h << "<h2>Functional connectivity: " << esc(fc.reference_name) << " against " << esc(fc.pasted_name) << "</h2>";
  h << "<p>Pearson correlation of the two matrices over their pairs: <b class='fc'>" << num(fc.correlation, 3)
    << "</b>";
  if (fc.control_correlation) {
    h << "; the same silicon network without the pasted synapses (control): " << num(*fc.control_correlation, 3);
  }
  h << ".</p><p class='note'>" << esc(fc.method) << " " << n << " channels.</p>";
  if (n < 2 || fc.reference.size() != n * n) {
    h << "<p class='note'>No matrix to draw (" << fc.reference.size() << " values for " << n << " channels).</p>";
    return 0;
  }
  // Scatter: every pair (i < j) where both matrices are defined. Each axis on its own range: the
  // correlation compares the matrices' patterns, not their scales.
  const auto span = [&](std::initializer_list<const std::vector<double>*> ms) {
    double lo = std::numeric_limits<double>::infinity();
    double hi = -lo;
    for (const auto* m : ms) {
      for (size_t i = 0; i < m->size(); ++i) {
        if (i / n != i % n && !std::isnan((*m)[i])) lo = std::min(lo, (*m)[i]), hi = std::max(hi, (*m)[i]);
      }
    }
    return std::pair{lo, hi};
  };
  const auto [xlo, xhi] = span({&fc.reference});
  const auto [ylo, yhi] = span({&fc.pasted, &fc.control});
  if (!(xhi > xlo) || !(yhi > ylo)) {
    h << "<p class='note'>No pair with a defined correlation in both networks.</p>";
    return 0;
  }
  const double W = 480;
  const double H = 420;
  Axis x{xlo, xhi, 70, W - 20};
  Axis y{ylo, yhi, H - 60, 20};
  size_t pairs = 0;
  h << "<svg width='" << W << "' height='" << H << "' role='img' aria-label='fc scatter'>";
  const auto dots = [&](const std::vector<double>& other, const char* color, bool count) {
    if (other.size() != n * n) return;
    h << "<g fill='" << color << "' fill-opacity='0.6'>";
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = i + 1; j < n; ++j) {
        const double a = fc.reference[i * n + j];
        const double b = other[i * n + j];
        if (std::isnan(a) || std::isnan(b)) continue;
        h << "<circle cx='" << num(x.at(a), 1) << "' cy='" << num(y.at(b), 1) << "' r='2'/>";
        pairs += count ? 1 : 0;
      }
    }
    h << "</g>";
  };
  dots(fc.control, "#aaa", false);
  dots(fc.pasted, "#1f77b4", true);
  svg::x_axis(h, x, H - 55, "FC, " + fc.reference_name, 2);
  svg::y_axis(h, y, 65, "FC, " + fc.pasted_name, 2);
  h << "<text x='" << W - 20 << "' y='34' text-anchor='end' fill='#1f77b4'>pasted network</text>";
  if (!fc.control.empty()) h << "<text x='" << W - 20 << "' y='50' text-anchor='end' fill='#888'>control (unwired)</text>";
  h << "</svg>";
  if (n <= kMaxMatrixChannels && fc.reference.size() == n * n && fc.pasted.size() == n * n) {
    h << "<div>";
    const double top_ref = span({&fc.reference}).second;
    const double top_paste = span({&fc.pasted}).second;
    matrix(h, fc.reference, n, top_ref, fc.reference_name + " (dark: " + num(top_ref, 3) + ")");
    matrix(h, fc.pasted, n, top_paste, fc.pasted_name + " (dark: " + num(top_paste, 3) + ")");
    h << "</div><p class='note'>Rows and columns: channels in the map's order (a pair's FC is symmetric); "
      << "white 0, dark blue each matrix's largest value; grey where a channel never fired.</p>";
  } else {
    h << "<p class='note'>Matrices not drawn beyond " << kMaxMatrixChannels << " channels.</p>";
  }
  return pairs;
}

}  // namespace ion
