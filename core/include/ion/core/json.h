#pragma once
// String escaping for the JSON the broker and the tools write by hand (status, reports, demo
// summaries), so that every one of them escapes the same way.
#include <string>
#include <string_view>

namespace ion {

// `s` as it goes between JSON quotes: quote, backslash and control characters escaped.
[[nodiscard]] std::string json_escape(std::string_view s);
// `s` as a JSON string, quotes included.
[[nodiscard]] inline std::string json_string(std::string_view s) { return '"' + json_escape(s) + '"'; }

}  // namespace ion
