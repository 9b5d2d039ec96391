// Corrupt, truncated and hostile safetensors files: each fails with a wick::Error that names the
// file and the problem, whether it is opened from disk or from memory.
#include <gtest/gtest.h>
#include <unistd.h>

#include "common/file_util.h"
#include "common/tensor_util.h"

namespace {

using namespace wt;
using wick::SafetensorsFile;

/// Opens `bytes` from a file and from memory; both must fail naming the source and `what`.
void expect_rejected(const std::string& bytes, const std::string& what) {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  write_raw(path, bytes);
  std::string e = error_of([&] { SafetensorsFile f(path); });
  EXPECT_EQ(e.rfind(path + ": ", 0), 0u) << "message must start with the file: " << e;
  EXPECT_NE(e.find(what), std::string::npos) << "expected \"" << what << "\" in: " << e;
  e = error_of([&] { SafetensorsFile::from_bytes(bytes, "mem.safetensors"); });
  EXPECT_EQ(e.rfind("mem.safetensors: ", 0), 0u) << e;
  EXPECT_NE(e.find(what), std::string::npos) << "expected \"" << what << "\" in: " << e;
}

/// A header with one tensor entry `entry` (JSON text) named "t", and `data` bytes.
std::string one(const std::string& entry, size_t data = 24) {
  return st_file("{\"t\": " + entry + "}", std::string(data, '\0'));
}

TEST(SafetensorsCorrupt, TooShortOrBadHeaderLength) {
  expect_rejected("", "0 bytes, too short");
  expect_rejected(std::string("\x02\x00\x00", 3), "3 bytes, too short");
  expect_rejected(le64(0), "invalid JSON");
  expect_rejected(le64(100) + "{}", "header length 100 is larger than the rest of the file (2 bytes)");
  expect_rejected(le64(uint64_t{1} << 63) + "{}", "is larger than the rest of the file");
  expect_rejected(le64(~uint64_t{0}) + "{}", "is larger than the rest of the file");
  // A header cut short by truncation.
  std::string full = st_file(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})",
                             std::string(4, '\0'));
  expect_rejected(full.substr(0, 20), "is larger than the rest of the file");
}

TEST(SafetensorsCorrupt, HugeHeaderLengthIsRejectedBeforeAllocating) {
  // A sparse file big enough to hold the claimed header: the limit, not the file size, stops it.
  TempDir dir;
  const std::string path = dir.file("huge.safetensors");
  const uint64_t n = 150'000'000;
  write_raw(path, le64(n) + "{");
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(8 + n + 16)), 0);
  size_t before = active();
  std::string e = error_of([&] { SafetensorsFile f(path); });
  EXPECT_EQ(e, path + ": header length 150000000 exceeds the limit of 100000000 bytes");
  EXPECT_EQ(active(), before);
}

TEST(SafetensorsCorrupt, HeaderIsNotAJsonObject) {
  expect_rejected(st_file("[1, 2]", ""), "header is an array, expected a JSON object");
  expect_rejected(st_file("\"text\"", ""), "header is a string");
  expect_rejected(st_file("5", ""), "header is an integer");
  expect_rejected(st_file("null", ""), "header is null");
}

TEST(SafetensorsCorrupt, InvalidJson) {
  expect_rejected(st_file("{\"t\": ", ""), "invalid JSON at byte");
  expect_rejected(st_file("{} trailing", ""), "invalid JSON at byte");
  expect_rejected(st_file("{'t': 1}", ""), "invalid JSON at byte");
  expect_rejected(st_file(std::string("{\"t\0\": 1}", 9), ""), "invalid JSON");
  // Numbers beyond double make nlohmann throw something other than a parse error.
  expect_rejected(st_file(R"({"__metadata__": {"format": 1e400}})", ""),
                  "invalid JSON: number overflow parsing '1e400'");
  expect_rejected(one(R"({"dtype": "F32", "shape": [6], "data_offsets": [0, -1e999]})"),
                  "number overflow");
  std::string deep = "{\"t\": " + std::string(100, '[') + std::string(100, ']') + "}";
  expect_rejected(st_file(deep, ""), "nested deeper than");
}

TEST(SafetensorsCorrupt, BadEntries) {
  expect_rejected(st_file("{\"t\": 5}", ""), "tensor \"t\": expected an object, got an integer");
  expect_rejected(one(R"({"shape": [6], "data_offsets": [0, 24]})"), "tensor \"t\": missing \"dtype\"");
  expect_rejected(one(R"({"dtype": "F32", "data_offsets": [0, 24]})"), "missing \"shape\"");
  expect_rejected(one(R"({"dtype": "F32", "shape": [6]})"), "missing \"data_offsets\"");
}

TEST(SafetensorsCorrupt, BadDtype) {
  expect_rejected(one(R"({"dtype": "F4", "shape": [6], "data_offsets": [0, 24]})"),
                  "tensor \"t\": unknown dtype \"F4\"");
  expect_rejected(one(R"({"dtype": "f32", "shape": [6], "data_offsets": [0, 24]})"),
                  "unknown dtype \"f32\"");
  expect_rejected(one(R"({"dtype": 4, "shape": [6], "data_offsets": [0, 24]})"),
                  "dtype: expected a string, got an integer");
}

TEST(SafetensorsCorrupt, BadShape) {
  expect_rejected(one(R"({"dtype": "F32", "shape": [-1, 2], "data_offsets": [0, 24]})"),
                  "shape: dimensions must be non-negative integers, got -1");
  expect_rejected(one(R"({"dtype": "F32", "shape": [2.5], "data_offsets": [0, 24]})"),
                  "non-negative integers, got 2.5");
  expect_rejected(one(R"({"dtype": "F32", "shape": [6.0], "data_offsets": [0, 24]})"),
                  "non-negative integers");
  expect_rejected(one(R"({"dtype": "F32", "shape": [[6]], "data_offsets": [0, 24]})"),
                  "non-negative integers, got an array");
  expect_rejected(one(R"({"dtype": "F32", "shape": "6", "data_offsets": [0, 24]})"),
                  "shape: expected an array, got a string");
  // numel * itemsize overflowing 64 bits (and int64), with and without a huge single dimension.
  expect_rejected(one(R"({"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 0]})"),
                  "is too large");
  expect_rejected(one(R"({"dtype": "F64", "shape": [1152921504606846976, 1], "data_offsets": [0, 0]})"),
                  "is too large");
  expect_rejected(one(R"({"dtype": "F32", "shape": [18446744073709551615], "data_offsets": [0, 0]})"),
                  "shape: dimension 18446744073709551615 is too large");
  expect_rejected(one(R"({"dtype": "F32", "shape": [65536, 65536, 65536, 65536], "data_offsets": [0, 0]})"),
                  "is too large");
  // Zero elements, but strides over the other dimensions would still overflow.
  expect_rejected(one(R"({"dtype": "F32", "shape": [0, 4611686018427387904, 4], "data_offsets": [0, 0]})"),
                  "is too large");
  std::string rank = "[";
  for (int i = 0; i < 65; ++i) rank += i ? ",1" : "1";
  expect_rejected(one(R"({"dtype": "F32", "shape": )" + rank + R"(], "data_offsets": [0, 4]})"),
                  "shape has 65 dimensions");
}

TEST(SafetensorsCorrupt, BadOffsets) {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  write_raw(path, st_file(R"({"lm_head.weight": {"dtype": "F32", "shape": [2,3], "data_offsets": [0, 12]}})",
                          std::string(24, '\0')));
  EXPECT_EQ(error_of([&] { SafetensorsFile f(path); }),
            path + ": tensor \"lm_head.weight\": data_offsets [0, 12] hold 12 bytes but shape "
                   "[2,3] F32 needs 24");

  expect_rejected(one(R"({"dtype": "F32", "shape": [6], "data_offsets": [0, 24]})", 12),
                  "data_offsets [0, 24] run past the end of the data block (12 bytes)");
  expect_rejected(one(R"({"dtype": "F32", "shape": [6], "data_offsets": [24, 48]})", 47),
                  "run past the end of the data block (47 bytes)");
  expect_rejected(one(R"({"dtype": "F32", "shape": [0], "data_offsets": [25, 25]})", 24),
                  "run past the end");
  expect_rejected(one(R"({"dtype": "F32", "shape": [6], "data_offsets": [24, 0]})"),
                  "data_offsets [24, 0] end before they begin");
  expect_rejected(one(R"({"dtype": "F32", "shape": [6], "data_offsets": [0, 24, 48]})"),
                  "data_offsets must be two non-negative integers");
  expect_rejected(one(R"({"dtype": "F32", "shape": [6], "data_offsets": [-24, 0]})"),
                  "data_offsets must be two non-negative integers");
  expect_rejected(one(R"({"dtype": "F32", "shape": [6], "data_offsets": [0, "24"]})"),
                  "data_offsets must be two non-negative integers");
  expect_rejected(one(R"({"dtype": "F32", "shape": [6], "data_offsets": 0})"),
                  "data_offsets must be two non-negative integers");
  expect_rejected(
      one(R"({"dtype": "F32", "shape": [1], "data_offsets": [18446744073709551612, 18446744073709551616]})"),
      "data_offsets must be two non-negative integers");
  expect_rejected(
      one(R"({"dtype": "F32", "shape": [1], "data_offsets": [18446744073709551612, 0]})"),
      "end before they begin");
}

TEST(SafetensorsCorrupt, OverlappingRanges) {
  expect_rejected(st_file(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                              "b": {"dtype": "F32", "shape": [4], "data_offsets": [12, 28]}})",
                          std::string(28, '\0')),
                  "tensors \"a\" [0, 16] and \"b\" [12, 28] overlap");
  // Same range twice.
  expect_rejected(st_file(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                              "b": {"dtype": "I32", "shape": [4], "data_offsets": [0, 16]}})",
                          std::string(16, '\0')),
                  "overlap");
  // One range inside a longer earlier one, past a tensor that ends sooner.
  expect_rejected(st_file(R"({"a": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]},
                              "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},
                              "c": {"dtype": "F32", "shape": [1], "data_offsets": [24, 28]}})",
                          std::string(32, '\0')),
                  "overlap");
  // Touching ranges, gaps and empty tensors anywhere are fine.
  std::string ok = st_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                               "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]},
                               "c": {"dtype": "F32", "shape": [0, 5], "data_offsets": [4, 4]},
                               "d": {"dtype": "F32", "shape": [1], "data_offsets": [20, 24]}})",
                           std::string(32, '\0'));
  SafetensorsFile f = SafetensorsFile::from_bytes(ok, "ok.safetensors");
  EXPECT_EQ(f.names().size(), 4u);
  EXPECT_EQ(f.load("c").shape(), (wick::Shape{0, 5}));
}

TEST(SafetensorsCorrupt, DuplicateNamesAndFields) {
  expect_rejected(st_file(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                              "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                          std::string(8, '\0')),
                  "duplicate key \"a\"");
  expect_rejected(st_file(R"({"a": {"dtype": "F32", "dtype": "F16", "shape": [1], "data_offsets": [0, 4]}})",
                          std::string(4, '\0')),
                  "duplicate key \"a\".\"dtype\"");
  expect_rejected(st_file(R"({"__metadata__": {"k": "1", "k": "2"}})", ""),
                  "duplicate key \"__metadata__\".\"k\"");
}

TEST(SafetensorsCorrupt, BadMetadata) {
  expect_rejected(st_file(R"({"__metadata__": {"format": 1}})", ""),
                  "__metadata__: \"format\": expected a string, got an integer");
  expect_rejected(st_file(R"({"__metadata__": {"format": null}})", ""), "expected a string, got null");
  expect_rejected(st_file(R"({"__metadata__": {"nested": {"a": "b"}}})", ""),
                  "expected a string, got an object");
  expect_rejected(st_file(R"({"__metadata__": ["a"]})", ""),
                  "__metadata__: expected an object, got an array");
  expect_rejected(st_file(R"({"__metadata__": "pt"})", ""), "expected an object, got a string");
}

TEST(SafetensorsCorrupt, NamesInMessagesAreEscapedAndShortened) {
  expect_rejected(one(R"({"dtype": "X", "shape": [1], "data_offsets": [0, 4]})"), "tensor \"t\"");
  std::string e = error_of([] {
    SafetensorsFile::from_bytes(
        st_file(R"({"a\u0001\"b": {"dtype": "X", "shape": [1], "data_offsets": [0, 4]}})", ""), "m");
  });
  EXPECT_NE(e.find(R"(tensor "a\x01\x22b")"), std::string::npos) << e;
  std::string long_name(5000, 'n');
  e = error_of([&] {
    SafetensorsFile::from_bytes(
        st_file("{\"" + long_name + R"(": {"dtype": "X", "shape": [1], "data_offsets": [0, 4]}})", ""),
        "m");
  });
  EXPECT_LT(e.size(), 400u);
  EXPECT_NE(e.find("...\""), std::string::npos) << e;
}

TEST(SafetensorsCorrupt, NotARegularFile) {
  TempDir dir;
  std::string e = error_of([&] { SafetensorsFile f(dir.path); });
  EXPECT_EQ(e, dir.path + ": is a directory, expected a safetensors file");
  e = error_of([&] { SafetensorsFile f(dir.file("missing.safetensors")); });
  EXPECT_EQ(e.rfind(dir.file("missing.safetensors") + ": cannot open", 0), 0u) << e;
  ASSERT_EQ(::mkfifo(dir.file("fifo").c_str(), 0600), 0);
  e = error_of([&] { SafetensorsFile f(dir.file("fifo")); });
  EXPECT_EQ(e, dir.file("fifo") + ": not a regular file");
}

// Every truncation and many single-byte changes of a valid file either open (and then load
// every tensor) or fail with a wick::Error naming the file; nothing else may happen.
TEST(SafetensorsCorrupt, EveryTruncationAndByteFlipFailsCleanly) {
  const std::string header = R"({"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
    "b": {"dtype": "BF16", "shape": [3], "data_offsets": [16, 22]},
    "c": {"dtype": "BOOL", "shape": [2], "data_offsets": [22, 24]},
    "__metadata__": {"format": "pt"}})";
  std::string data = raw_bytes(std::vector<float>{1, 2, 3, 4}) +
                     raw_bytes(std::vector<uint16_t>{0x3F80, 0x4000, 0x4040}) +
                     std::string("\x01\x00", 2);
  const std::string full = st_file(header, data, 8);
  ASSERT_NO_THROW(SafetensorsFile::from_bytes(full, "full").load_all());
  for (size_t k = 0; k < full.size(); ++k) {
    std::string e = error_of([&] { SafetensorsFile::from_bytes(full.substr(0, k), "cut"); });
    ASSERT_EQ(e.rfind("cut: ", 0), 0u) << "length " << k << ": " << e;
  }
  int opened = 0, rejected = 0;
  for (size_t pos = 0; pos < full.size(); ++pos) {
    for (unsigned char v : {0x00, 0x01, 0x22, 0x2c, 0x30, 0x39, 0x5b, 0x5d, 0x7b, 0x7d, 0xff}) {
      std::string m = full;
      m[pos] = static_cast<char>(v);
      std::string e = error_of([&] { SafetensorsFile::from_bytes(m, "flip").load_all(); });
      if (e == "<no error>") {
        ++opened;
      } else {
        ++rejected;
        ASSERT_EQ(e.rfind("flip: ", 0), 0u) << "byte " << pos << " = " << int(v) << ": " << e;
      }
    }
  }
  EXPECT_GT(opened, 0);
  EXPECT_GT(rejected, 0);
}

}  // namespace
