#include "ion/core/names.h"

#include <algorithm>
#include <cctype>
#include <numeric>
#include <vector>

namespace ion {

size_t edit_distance(std::string_view a, std::string_view b) {
  const auto low = [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); };
  std::vector<size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), size_t{0});
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (low(a[i - 1]) == low(b[j - 1]) ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string closest_names(std::string_view name, std::span<const std::string> known) {
  if (known.empty()) return " (none are known)";
  const size_t limit = std::max<size_t>(2, name.size() / 3);
  std::vector<std::pair<size_t, std::string_view>> close;
  for (const auto& k : known) {
    const size_t d = edit_distance(name, k);
    // A prefix or a contained name ("padova" in "padova-mea") is close whatever the length.
    const bool contains = !name.empty() && (k.find(name) != std::string::npos ||
                                            name.find(k) != std::string_view::npos);
    if (d <= limit || contains) close.emplace_back(d, k);
  }
  std::stable_sort(close.begin(), close.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  std::string out;
  if (!close.empty()) {
    out = "; did you mean ";
    for (size_t i = 0; i < close.size() && i < 3; ++i) {
      out += (i == 0 ? "'" : " or '") + std::string(close[i].second) + "'";
    }
    out += "?";
  }
  out += " (known: ";
  for (size_t i = 0; i < known.size() && i < 20; ++i) out += (i == 0 ? "" : ", ") + known[i];
  if (known.size() > 20) out += ", and " + std::to_string(known.size() - 20) + " more";
  return out + ")";
}

}  // namespace ion
