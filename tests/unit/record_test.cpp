// The recording format and the interchange library: framing, CRC, torn tails, exact times,
// importers' error messages, round trips through CSV.
#include <gtest/gtest.h>

#include <sstream>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "ion/core/codec.h"
#include "ion/core/record.h"
#include "ion/core/dataset.h"
#include "ion/interchange/export.h"
#include "ion/interchange/import.h"
#include "ion/interchange/inspect.h"

namespace ion {
namespace {

namespace fs = std::filesystem;
using ion::Dataset;
using ion::SourceData;

std::string tmp(const std::string& name) { return ::testing::TempDir() + "/" + name; }

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

TEST(RecordFormat, Crc32cOfTheStandardCheckString) {
  EXPECT_EQ(record::crc32c(0, "123456789", 9), 0xE3069283U);  // RFC 3720 check value
  // Incremental equals one shot, whatever the split (exercises the 8-byte path and the tail).
  const std::string s = "The quick brown fox jumps over the lazy dog, twice over the lazy dog";
  for (size_t k = 0; k <= s.size(); ++k) {
    EXPECT_EQ(record::crc32c(record::crc32c(0, s.data(), k), s.data() + k, s.size() - k),
              record::crc32c(0, s.data(), s.size()));
  }
}

Dataset sample_dataset(size_t events) {
  Dataset d;
  d.header.set_session_id(7);
  d.header.set_origin("test");
  SourceData s;
  s.desc.set_name("culture");
  s.desc.set_kind("import");
  s.desc.set_channels(4);
  for (size_t i = 0; i < events; ++i) {
    s.channels.push_back(static_cast<uint32_t>(i % 4));
    s.times_ns.push_back(static_cast<int64_t>(i) * 1'000'000 + 17);
  }
  *d.header.add_sources() = s.desc;
  d.sources.push_back(s);
  return d;
}

TEST(RecordFormat, WrittenEventsReadBackExactly) {
  const Dataset d = sample_dataset(10000);
  ion::write_recording(tmp("rt.ionrec"), d, 1000);
  ion::LoadStats st;
  const Dataset r = ion::load_recording(tmp("rt.ionrec"), &st);
  EXPECT_FALSE(st.torn);
  EXPECT_EQ(st.batches, 10U);
  ASSERT_EQ(r.sources.size(), 1U);
  EXPECT_EQ(r.sources[0].times_ns, d.sources[0].times_ns);
  EXPECT_EQ(r.sources[0].channels, d.sources[0].channels);
  EXPECT_EQ(r.header.session_id(), 7U);
  EXPECT_EQ(r.header.format_version(), record::kFormatVersion);
  const auto x = interchange::inspect(tmp("rt.ionrec"));
  EXPECT_EQ(x.total_events, 10000U);
  EXPECT_GE(x.index_records, 8U) << "an index record per second of event time";
  EXPECT_EQ(x.channels.size(), 4U);
}

TEST(Import, SessionStartIsAnIso8601TimeWithItsZone) {
  using interchange::parse_session_start;
  const int64_t t = 1'493'733'780'000'000'000;  // 2017-05-02T14:03:00Z
  EXPECT_EQ(parse_session_start("2017-05-02T14:03:00Z"), t);
  EXPECT_EQ(parse_session_start("2017-05-02T16:03:00+02:00"), t);
  EXPECT_EQ(parse_session_start("2017-05-02T09:03:00-05:00"), t);
  EXPECT_EQ(parse_session_start("2017-05-02T14:03:00.25Z"), t + 250'000'000);
  EXPECT_EQ(parse_session_start("2017-05-02T14:03Z"), t);
  EXPECT_EQ(parse_session_start("2017-05-02"), t - (14 * 3600 + 3 * 60) * 1'000'000'000LL);
  for (const char* bad : {"2017-05-02T14:03:00", "yesterday", "2017-02-30T00:00:00Z", "2017-13-01",
                          "2017-05-02T25:00:00Z", "2017-05-02T14:03:00+2", "1969-12-31T00:00:00Z"}) {
    try {
      (void)parse_session_start(bad);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("2017-05-02T14:03:00Z"), std::string::npos) << e.what();
    }
  }
}

TEST(Inspect, RatesAreOverTheRecordingsSpan) {
  // A channel with 2 spikes 0.64 ms apart in a 10 s recording fires at 0.2/s, not 3125/s (its
  // own first-to-last span), and the printed rates say so.
  Dataset d;
  d.header.set_session_id(8);
  SourceData s;
  s.desc.set_name("culture");
  s.desc.set_kind("import");
  s.desc.set_channels(2);
  for (int i = 0; i <= 100; ++i) {  // channel 0: 101 spikes over 10 s
    s.channels.push_back(0);
    s.times_ns.push_back(int64_t{i} * 100'000'000);
  }
  s.channels.insert(s.channels.end(), {1, 1});
  s.times_ns.insert(s.times_ns.end(), {5'000'000'000, 5'000'640'000});
  *d.header.add_sources() = s.desc;
  d.sources.push_back(s);
  ion::write_recording(tmp("rates.ionrec"), d, 1000);
  const auto x = interchange::inspect(tmp("rates.ionrec"));
  ASSERT_EQ(x.channels.size(), 2U);
  const auto& two = x.channels[0].count == 2 ? x.channels[0] : x.channels[1];
  EXPECT_DOUBLE_EQ(interchange::span_rate_hz(x, two.count), 0.2);
  EXPECT_DOUBLE_EQ(interchange::span_rate_hz(x, 101), 10.1);
  std::ostringstream text;
  interchange::print_json(x, text);
  EXPECT_NE(text.str().find("\"count\":2,\"first_ns\":5000000000,\"last_ns\":5000640000,\"rate_hz\":0.2}"),
            std::string::npos)
      << text.str();
}

TEST(RecordFormat, TornTailAtEveryCutIsDetectedAndEverythingBeforeItReads) {
  // Promise 7: "Recordings survive a crash: a torn tail is detected and cut; everything before it
  // reads back." Cut the file at every byte of its last two records.
  const Dataset d = sample_dataset(300);
  ion::write_recording(tmp("whole.ionrec"), d, 100);
  const auto whole = fs::file_size(tmp("whole.ionrec"));
  // Offsets of the records, from a clean read.
  std::vector<uint64_t> ends;
  {
    record::Reader rd(tmp("whole.ionrec"));
    record::Record r;
    while (rd.next(r)) ends.push_back(rd.valid_bytes());
    ASSERT_FALSE(rd.torn());
  }
  ASSERT_GE(ends.size(), 3U);
  const uint64_t from = ends[ends.size() - 3];
  for (uint64_t cut = from + 1; cut < whole; ++cut) {
    fs::copy_file(tmp("whole.ionrec"), tmp("cut.ionrec"), fs::copy_options::overwrite_existing);
    fs::resize_file(tmp("cut.ionrec"), cut);
    record::Reader rd(tmp("cut.ionrec"));
    record::Record r;
    uint64_t n = 0;
    while (rd.next(r)) ++n;
    const auto good = static_cast<uint64_t>(std::upper_bound(ends.begin(), ends.end(), cut) - ends.begin());
    ASSERT_EQ(n, good) << "cut at " << cut;
    const bool on_boundary = std::find(ends.begin(), ends.end(), cut) != ends.end();
    ASSERT_EQ(rd.torn(), !on_boundary) << "cut at " << cut;
    ASSERT_EQ(rd.valid_bytes(), good == 0 ? from : ends[good - 1]);
    // repair() cuts exactly the torn bytes; the file then reads clean.
    EXPECT_EQ(record::repair(tmp("cut.ionrec")), cut - rd.valid_bytes());
    record::Reader again(tmp("cut.ionrec"));
    uint64_t m = 0;
    while (again.next(r)) ++m;
    EXPECT_FALSE(again.torn());
    EXPECT_EQ(m, n);
  }
}

TEST(RecordFormat, FlippedByteFailsItsCrcAndNotAnEarlierRecord) {
  const Dataset d = sample_dataset(300);
  ion::write_recording(tmp("flip.ionrec"), d, 100);
  std::vector<uint64_t> ends;
  {
    record::Reader rd(tmp("flip.ionrec"));
    record::Record r;
    while (rd.next(r)) ends.push_back(rd.valid_bytes());
  }
  std::fstream f(tmp("flip.ionrec"), std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(ends[1] + 20));  // inside the third record
  f.put('\x55');
  f.close();
  record::Reader rd(tmp("flip.ionrec"));
  record::Record r;
  uint64_t n = 0;
  while (rd.next(r)) ++n;
  EXPECT_EQ(n, 2U);
  EXPECT_TRUE(rd.torn());
  EXPECT_NE(rd.tail_reason().find("CRC mismatch"), std::string::npos) << rd.tail_reason();
}

TEST(RecordFormat, SeekByTimeSkipsOnlyOlderRecords) {
  // "periodic index records so a reader can seek by time": 10 s of events, an index each second.
  const Dataset d = sample_dataset(10000);  // one event per ms
  ion::write_recording(tmp("seek.ionrec"), d, 100);
  record::Reader rd(tmp("seek.ionrec"));
  Codec codec;
  BatchHeader h;
  EventBatch ev;
  auto first_event_after_seek = [&](int64_t t) {
    EXPECT_TRUE(rd.seek_time(t));
    record::Record r;
    int64_t first = INT64_MAX;
    uint64_t at_or_after = 0;
    while (rd.next(r)) {
      if (r.type != record::RecordType::batch) continue;
      EXPECT_TRUE(codec.decode(r.body).ok());
      EXPECT_EQ(codec.take_batch({}, h, ev), Reject::none);
      for (int64_t x : ev.times_ns) {
        first = std::min(first, x);
        at_or_after += x >= t;
      }
    }
    EXPECT_EQ(at_or_after, static_cast<uint64_t>(std::count_if(d.sources[0].times_ns.begin(), d.sources[0].times_ns.end(),
                                                               [&](int64_t x) { return x >= t; })))
        << "nothing at or after the sought time is skipped";
    return first;
  };
  const int64_t t = 5'500'000'017;
  const int64_t first = first_event_after_seek(t);
  EXPECT_LE(first, t);
  EXPECT_GT(first, t - 2'100'000'000) << "at most about two index intervals are read again";
  EXPECT_EQ(first_event_after_seek(0), 17) << "before everything: from the start";
}

TEST(RecordFormat, NotARecordingIsAClearError) {
  write_text(tmp("junk.ionrec"), "hello, world\n");
  try {
    record::Reader rd(tmp("junk.ionrec"));
    ADD_FAILURE() << "junk accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("is not an IoN recording"), std::string::npos) << e.what();
  }
  EXPECT_THROW(record::Reader(tmp("no-such-file.ionrec")), std::runtime_error);
  // A folder given where a recording is expected is named as one, not as a file of the wrong kind.
  try {
    record::Reader rd(::testing::TempDir());
    ADD_FAILURE() << "a folder accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("is a folder, not an IoN recording"), std::string::npos) << e.what();
  }
}

TEST(Interchange, SecondsParseAndPrintExactly) {
  int64_t ns = 0;
  ASSERT_TRUE(ion::parse_seconds_ns("3573.7048", ns));
  EXPECT_EQ(ns, 3'573'704'800'000);
  ASSERT_TRUE(ion::parse_seconds_ns(" 0.000000001 ", ns));
  EXPECT_EQ(ns, 1);
  ASSERT_TRUE(ion::parse_seconds_ns("12", ns));
  EXPECT_EQ(ns, 12'000'000'000);
  ASSERT_TRUE(ion::parse_seconds_ns("-1.5", ns));
  EXPECT_EQ(ns, -1'500'000'000);
  EXPECT_FALSE(ion::parse_seconds_ns("1e-3", ns));
  EXPECT_FALSE(ion::parse_seconds_ns("0.0000000001", ns)) << "finer than 1 ns";
  EXPECT_FALSE(ion::parse_seconds_ns("abc", ns));
  EXPECT_FALSE(ion::parse_seconds_ns("", ns));
  EXPECT_EQ(ion::format_seconds(3'573'704'800'000), "3573.7048");
  EXPECT_EQ(ion::format_seconds(1), "0.000000001");
  EXPECT_EQ(ion::format_seconds(-1'500'000'000), "-1.5");
  EXPECT_EQ(ion::format_seconds(0), "0");
}

TEST(Interchange, AnHourOnA20kHzGridIsCarriedAsExactTicks) {
  // "times on a sample grid become integer ticks: no drift over an hour of data"
  std::vector<double> s;
  std::vector<int64_t> ticks;
  for (int64_t k = 0; k < 72'000'000; k += 7919) {  // up to 3600 s at 20 kHz
    ticks.push_back(k);
    s.push_back(static_cast<double>(k) / 20000.0);
  }
  double rate = 0;
  const auto ns = ion::seconds_to_ns_on_grid(s, rate);
  EXPECT_EQ(rate, 20000.0);
  for (size_t i = 0; i < ns.size(); ++i) ASSERT_EQ(ns[i], ticks[i] * 50'000) << i;
  // Off any grid: nearest nanosecond, and no grid claimed.
  std::vector<double> off = {0.1234567891, 1.0000000003};
  rate = 0;
  const auto o = ion::seconds_to_ns_on_grid(off, rate);
  EXPECT_EQ(rate, 0.0);
  EXPECT_EQ(o[0], 123'456'789);
}

TEST(Interchange, CsvImportErrorsNameFileAndLine) {
  auto err = [](const std::string& text) {
    write_text(tmp("in.csv"), text);
    try {
      (void)interchange::import_csv(tmp("in.csv"));
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(err("chan,t\n").find("in.csv:1: expected the header channel,time_s"), std::string::npos);
  EXPECT_NE(err("channel,time_s\nA,0.5\nB,half\n").find("in.csv:3: time_s 'half' is not a decimal"), std::string::npos);
  EXPECT_NE(err("channel,time_s\nA,0.5,3\n").find("in.csv:2: expected 2 fields, got 3"), std::string::npos);
  EXPECT_NE(err("channel,time_s,amp\nA,0.5,nan\n").find("in.csv:2: value 'nan' is not a finite number"), std::string::npos);
  EXPECT_NE(err("").find("empty file"), std::string::npos);
}

TEST(Interchange, CsvImportExportRoundTripIsExact) {
  const std::string text =
      "channel,time_s\nch_2,0.00004\nch_10,0.5\nch_2,1.25\n\"a,b\",2.00000005\nch_10,3599.99995\n";
  write_text(tmp("rt.csv"), text);
  const auto r = interchange::import_csv(tmp("rt.csv"));
  const auto& s = r.data.sources.at(0);
  ASSERT_EQ(s.desc.channels(), 3U);
  EXPECT_EQ(s.channel_name(0), "a,b");
  EXPECT_EQ(s.channel_name(1), "ch_2");  // natural order: ch_2 before ch_10
  EXPECT_EQ(s.channel_name(2), "ch_10");
  ion::write_recording(tmp("rt-csv.ionrec"), r.data);
  const Dataset back = ion::load_recording(tmp("rt-csv.ionrec"));
  (void)interchange::export_csv(back, tmp("rt-out.csv"));
  std::ifstream f(tmp("rt-out.csv"));
  const std::string out((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(out, text);
}

TEST(Interchange, NpyFilesHaveAValidHeader) {
  const std::vector<uint64_t> v = {1, 2, 3};
  interchange::write_npy(tmp("a.npy"), "<u8", {3}, v.data(), 24);
  std::ifstream f(tmp("a.npy"), std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ASSERT_EQ(s.substr(0, 6), "\x93NUMPY");
  const size_t hlen = static_cast<uint8_t>(s[8]) | (static_cast<uint8_t>(s[9]) << 8);
  EXPECT_EQ((10 + hlen) % 64, 0U) << "data aligned to 64 bytes";
  EXPECT_EQ(s[10 + hlen - 1], '\n');
  EXPECT_NE(s.find("'shape': (3,)"), std::string::npos);
  EXPECT_EQ(s.size(), 10 + hlen + 24);
}

// Real data (../shared/data), when present: the verified counts survive import.
std::string shared_data(const std::string& rel) {
  const std::string p = std::string(ION_SOURCE_DIR) + "/../shared/data/" + rel;
  return fs::exists(p) ? p : std::string();
}

TEST(Interchange, SjemeaImportKeepsTheVerifiedCounts) {
  const std::string f = shared_data("mea-spikes/hiPSN_tc65_d34_spikes6sd.h5");
  if (f.empty()) GTEST_SKIP() << "../shared/data is absent (a user's clone): nothing to check";
  const auto r = interchange::import_sjemea(f);
  const auto& s = r.data.sources.at(0);
  EXPECT_EQ(s.size(), 29746U);
  EXPECT_EQ(s.desc.channels(), 33U);
  EXPECT_EQ(s.desc.sample_rate_hz(), 25000.0);
  EXPECT_EQ(s.times_ns.front(), 13'640'000);
  EXPECT_EQ(s.times_ns.back(), 300'096'800'000);
  size_t ch22 = 0;
  for (uint32_t c : s.channels) ch22 += s.channel_name(c) == "ch_22_unit_0";
  EXPECT_EQ(ch22, 3913U);
  bool warned = false;
  for (const auto& n : r.notes) warned = warned || n.find("label is not trusted") != std::string::npos;
  EXPECT_TRUE(warned) << "the APS_64x64_42um label of an 8x8 recording is called out";
}

// The fuzz target explores the importer through an in-memory file image: that path must read a
// real file exactly as `ion import` does, or the fuzzing would cover a different reader.
TEST(Interchange, SjemeaFromMemoryReadsExactlyAsFromTheFile) {
  const std::string f = shared_data("mea-spikes/hiPSN_tc65_d34_spikes6sd.h5");
  if (f.empty()) GTEST_SKIP() << "../shared/data is absent (a user's clone): nothing to check";
  std::ifstream in(f, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  interchange::ImportOptions o;
  o.source_name = "culture";
  const auto from_file = interchange::import_sjemea(f, o);
  const auto from_memory = interchange::import_sjemea_image(bytes, f, o);
  const auto& a = from_file.data.sources.at(0);
  const auto& b = from_memory.data.sources.at(0);
  EXPECT_EQ(a.times_ns, b.times_ns);
  EXPECT_EQ(a.channels, b.channels);
  EXPECT_EQ(a.desc.SerializeAsString(), b.desc.SerializeAsString());
  EXPECT_EQ(from_file.notes, from_memory.notes);
  EXPECT_THROW(interchange::import_sjemea_image({}, "empty.h5"), std::runtime_error);
  const std::vector<uint8_t> junk(4096, 0x5a);
  EXPECT_THROW(interchange::import_sjemea_image(junk, "junk.h5"), std::runtime_error);
}

// Found by fuzz_hdf5: electrodes 1e30 um apart made the note's distance an out-of-range
// float-to-int cast (undefined behaviour; "-2147483648 um" in practice). The file is untrusted:
// its numbers are reported as they are.
TEST(Interchange, AbsurdElectrodePositionsAreReportedNotCastToInt) {
  const auto r = interchange::import_sjemea(std::string(ION_SOURCE_DIR) + "/tests/data/absurd-positions.h5");
  bool said = false;
  for (const auto& n : r.notes) said = said || n.find("sit 1e+30 um apart") != std::string::npos;
  EXPECT_TRUE(said) << (r.notes.empty() ? "" : r.notes.back());
  EXPECT_EQ(r.data.sources.at(0).size(), 3u);
}

TEST(Interchange, AxionImportKeepsTheVerifiedCounts) {
  const std::string f = shared_data("mea-spikes/axion_48well_DIV3_spike_list.csv.gz");
  if (f.empty()) GTEST_SKIP() << "../shared/data is absent (a user's clone): nothing to check";
  const auto r = interchange::import_axion_csv(f);
  const auto& s = r.data.sources.at(0);
  EXPECT_EQ(s.size(), 100957U);
  EXPECT_EQ(s.desc.channels(), 269U);
  EXPECT_EQ(s.desc.sample_rate_hz(), 12500.0);
  EXPECT_EQ(s.times_ns.front(), 10'480'000);
  EXPECT_EQ(s.times_ns.back(), 57'678'240'000);
  const auto [lo, hi] = std::minmax_element(s.payload.begin(), s.payload.end());
  // The data README gives the amplitude range as 0.014-0.66 mV; the file's own extremes are
  // 0.016443184 and 0.629446006 (float32 here).
  EXPECT_FLOAT_EQ(*lo, 0.016443184F);
  EXPECT_FLOAT_EQ(*hi, 0.629446006F);
  EXPECT_EQ(s.payload.size(), s.size());
}

}  // namespace
}  // namespace ion
