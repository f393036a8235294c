// Suggestions for mistyped names (what a refusal tells the user to check) and the UTF-8 repair
// that keeps a file's odd bytes from making a recording unreadable.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ion/core/names.h"
#include "ion/v1/record.pb.h"

namespace ion {
namespace {

TEST(Names, EditDistanceIsCaseInsensitiveLevenshtein) {
  EXPECT_EQ(edit_distance("padova", "padova"), 0u);
  EXPECT_EQ(edit_distance("Padova", "padova"), 0u);
  EXPECT_EQ(edit_distance("padvoa", "padova"), 2u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);  // the textbook case
}

TEST(Names, TheClosestNamesComeFirstAndAllAreListed) {
  const std::vector<std::string> known = {"padova", "zurich", "southampton"};
  EXPECT_EQ(closest_names("padvoa", known),
            "; did you mean 'padova'? (known: padova, zurich, southampton)");
  EXPECT_EQ(closest_names("mallory", known), " (known: padova, zurich, southampton)");
  EXPECT_EQ(closest_names("southampton-synapse", known),
            "; did you mean 'southampton'? (known: padova, zurich, southampton)");
  EXPECT_EQ(closest_names("x", {}), " (none are known)");
  std::vector<std::string> many;
  for (int i = 0; i < 25; ++i) many.push_back("lab" + std::to_string(i));
  EXPECT_NE(closest_names("zzz", many).find(", and 5 more)"), std::string::npos);
}

TEST(Names, InvalidUtf8IsReplacedSoTheNameSurvivesARecording) {
  EXPECT_EQ(valid_utf8("ch_12 µm"), "ch_12 µm");  // valid multi-byte text is kept
  EXPECT_EQ(valid_utf8(std::string("a\xff" "b")), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(valid_utf8(std::string("\xC0\xAF")), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong '/'
  EXPECT_EQ(valid_utf8(std::string("\xED\xA0\x80")), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(valid_utf8(std::string("\xE2\x82")), "\xEF\xBF\xBD\xEF\xBF\xBD");  // cut short
  // The repaired name round-trips through protobuf; the raw bytes would not.
  v1::ChannelInfo c;
  c.set_name(valid_utf8(std::string("e\xfe\x01")));
  v1::ChannelInfo back;
  ASSERT_TRUE(back.ParseFromString(c.SerializeAsString()));
  EXPECT_EQ(back.name(), c.name());
}

}  // namespace
}  // namespace ion
