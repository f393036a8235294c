#include "ion/core/names.h"

#include <algorithm>
#include <cstdint>
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

std::string valid_utf8(std::string_view t) {
  std::string out;
  out.reserve(t.size());
  size_t i = 0;
  while (i < t.size()) {
    const auto b = static_cast<unsigned char>(t[i]);
    size_t len = 0;
    uint32_t cp = 0;
    if (b < 0x80) {
      len = 1;
      cp = b;
    } else if ((b & 0xE0) == 0xC0) {
      len = 2;
      cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      len = 3;
      cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      len = 4;
      cp = b & 0x07;
    }
    bool ok = len > 0 && i + len <= t.size();
    for (size_t k = 1; ok && k < len; ++k) {
      const auto c = static_cast<unsigned char>(t[i + k]);
      ok = (c & 0xC0) == 0x80;
      cp = (cp << 6) | (c & 0x3F);
    }
    // Overlong forms, surrogates and code points beyond U+10FFFF are not valid either.
    static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    ok = ok && cp >= kMin[len] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
    if (ok) {
      out.append(t.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

}  // namespace ion
