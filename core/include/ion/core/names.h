#pragma once
// Suggestions for a mistyped name: what a refusal or a config error tells the user to check.
#include <span>
#include <string>
#include <string_view>

namespace ion {

// Levenshtein distance, case-insensitive (a lab types "Padova" for "padova").
[[nodiscard]] size_t edit_distance(std::string_view a, std::string_view b);

// "; did you mean 'x'? (known: a, b, c)", naming the candidates within a third of the name's
// length (at least 2 edits) and closest first; "(known: ...)" alone when none is close;
// "(none are known)" for an empty list. At most 20 names are listed.
[[nodiscard]] std::string closest_names(std::string_view name, std::span<const std::string> known);

// `text` with every byte that is not part of a valid UTF-8 sequence replaced by U+FFFD: protobuf
// string fields (names in recordings) must be valid UTF-8, or the recording cannot be read back.
[[nodiscard]] std::string valid_utf8(std::string_view text);

}  // namespace ion
