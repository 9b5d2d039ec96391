// safetensors reading and writing: a file built byte by byte from the format's description is read
// correctly (values, dtypes, metadata, conversions); every dtype and memory layout survives a
// roundtrip; the writer's output follows the format; loads are zero-copy views of the mapping that
// the engine never writes through; failed writes leave nothing behind.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "common/file_util.h"
#include "common/tensor_util.h"

namespace {

using namespace wt;
using wick::SafetensorsFile;
using wick::Tensor;

/// Pointer to the first element of an evaluated tensor, whatever its dtype.
const void* data_ptr(const Tensor& t) {
  switch (t.dtype()) {
    case DType::f32: return t.data<float>();
    case DType::f64: return t.data<double>();
    case DType::f16: return t.data<wick::float16>();
    case DType::bf16: return t.data<wick::bfloat16>();
    case DType::i32: return t.data<int32_t>();
    case DType::i64: return t.data<int64_t>();
    case DType::boolean: return t.data<bool>();
  }
  return nullptr;
}

/// True when `p` lies inside a mapping of the file at `path` (from /proc/self/maps).
bool in_mapping_of(const void* p, const std::string& path) {
  const std::string real = std::filesystem::canonical(path).string();
  std::ifstream maps("/proc/self/maps");
  std::string line;
  auto addr = reinterpret_cast<uintptr_t>(p);
  while (std::getline(maps, line)) {
    std::istringstream in(line);
    std::string range, perms, offset, dev, inode, file;
    in >> range >> perms >> offset >> dev >> inode;
    std::getline(in >> std::ws, file);
    if (file != real) continue;
    uintptr_t lo = std::stoull(range.substr(0, range.find('-')), nullptr, 16);
    uintptr_t hi = std::stoull(range.substr(range.find('-') + 1), nullptr, 16);
    if (addr >= lo && addr < hi) return true;
  }
  return false;
}

// A file with one tensor of each loadable dtype, written from the format description.
const char* kHeader = R"({
  "w":   {"dtype": "F32",  "shape": [2, 3], "data_offsets": [0, 24]},
  "ids": {"dtype": "I64",  "shape": [2],    "data_offsets": [24, 40]},
  "h":   {"dtype": "F16",  "shape": [3],    "data_offsets": [40, 46]},
  "b":   {"dtype": "BF16", "shape": [3],    "data_offsets": [46, 52]},
  "m":   {"dtype": "BOOL", "shape": [4],    "data_offsets": [52, 56]},
  "i":   {"dtype": "I32",  "shape": [2],    "data_offsets": [56, 64]},
  "d":   {"dtype": "F64",  "shape": [],     "data_offsets": [64, 72]},
  "__metadata__": {"format": "pt", "note": "h\u00e9llo"}
})";

std::string hand_data() {
  return raw_bytes(std::vector<float>{1, 2, 3, 4, 5, 6}) +
         raw_bytes(std::vector<int64_t>{-5, int64_t{1} << 40}) +
         raw_bytes(std::vector<uint16_t>{0x3C00, 0xC000, 0x7BFF}) +  // f16: 1, -2, 65504
         raw_bytes(std::vector<uint16_t>{0x3F80, 0xC040, 0x3EC0}) +  // bf16: 1, -3, 0.375
         std::string("\x01\x00\x00\x01", 4) + raw_bytes(std::vector<int32_t>{7, -8}) +
         raw_bytes(std::vector<double>{0.1});
}

TEST(Safetensors, ReadsAFileWrittenFromTheFormatDescription) {
  TempDir dir;
  const std::string path = dir.file("hand.safetensors");
  write_raw(path, st_file(kHeader, hand_data(), 8));
  SafetensorsFile f(path);
  EXPECT_EQ(f.path(), path);
  EXPECT_EQ(f.names(), (std::vector<std::string>{"b", "d", "h", "i", "ids", "m", "w"}));
  EXPECT_TRUE(f.contains("w"));
  EXPECT_FALSE(f.contains("__metadata__"));
  EXPECT_EQ(f.metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"note", "h\xc3\xa9llo"}}));

  const wick::SafetensorsTensorInfo& w = f.info("w");
  EXPECT_EQ(w.dtype, "F32");
  EXPECT_EQ(w.wick_dtype, DType::f32);
  EXPECT_EQ(w.shape, (wick::Shape{2, 3}));
  EXPECT_EQ(w.begin, 0u);
  EXPECT_EQ(w.end, 24u);
  EXPECT_EQ(f.info("d").shape, wick::Shape{});

  Tensor tw = f.load("w");
  EXPECT_EQ(tw.dtype(), DType::f32);
  EXPECT_EQ(tw.shape(), (wick::Shape{2, 3}));
  EXPECT_EQ(tw.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(f.load("ids").to_vector<int64_t>(), (std::vector<int64_t>{-5, int64_t{1} << 40}));
  EXPECT_EQ(f.load("h").dtype(), DType::f16);
  EXPECT_EQ(f.load("h").to_vector<float>(), (std::vector<float>{1, -2, 65504}));
  EXPECT_EQ(f.load("b").dtype(), DType::bf16);
  EXPECT_EQ(f.load("b").to_vector<float>(), (std::vector<float>{1, -3, 0.375}));
  EXPECT_EQ(f.load("m").to_vector<bool>(), (std::vector<bool>{true, false, false, true}));
  EXPECT_EQ(f.load("i").to_vector<int32_t>(), (std::vector<int32_t>{7, -8}));
  EXPECT_EQ(f.load("d").item<double>(), 0.1);

  // load_all and load_safetensors give the same.
  auto all = wick::load_safetensors(path);
  ASSERT_EQ(all.size(), 7u);
  EXPECT_EQ(all.at("b").to_vector<float>(), (std::vector<float>{1, -3, 0.375}));
  EXPECT_EQ(all.at("ids").dtype(), DType::i64);
}

TEST(Safetensors, ConvertsFloatsToTheAskedDtypeAndLeavesIntegersAlone) {
  TempDir dir;
  const std::string path = dir.file("hand.safetensors");
  write_raw(path, st_file(kHeader, hand_data(), 8));
  SafetensorsFile f(path);

  Tensor h = f.load("h", DType::f32);
  EXPECT_EQ(h.dtype(), DType::f32);
  EXPECT_EQ(h.to_vector<float>(), (std::vector<float>{1, -2, 65504}));
  Tensor b = f.load("b", DType::f32);
  EXPECT_EQ(b.dtype(), DType::f32);
  EXPECT_EQ(b.to_vector<float>(), (std::vector<float>{1, -3, 0.375}));
  EXPECT_EQ(f.load("d", DType::f32).item<float>(), 0.1f);
  // f16 -> bf16 and f32 -> f16 go through the usual rounding.
  EXPECT_EQ(f.load("h", DType::bf16).to_vector<float>(),
            (std::vector<float>{1, -2, static_cast<float>(wick::bfloat16(65504.0f))}));
  Tensor w16 = f.load("w", DType::f16);
  EXPECT_EQ(w16.dtype(), DType::f16);
  EXPECT_EQ(w16.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(f.load("w", DType::f64).dtype(), DType::f64);

  // Integer and bool tensors keep their dtype whatever float dtype is asked for.
  EXPECT_EQ(f.load("ids", DType::bf16).dtype(), DType::i64);
  EXPECT_EQ(f.load("i", DType::f32).dtype(), DType::i32);
  EXPECT_EQ(f.load("m", DType::f16).dtype(), DType::boolean);
  auto all = f.load_all(DType::bf16);
  EXPECT_EQ(all.at("w").dtype(), DType::bf16);
  EXPECT_EQ(all.at("d").dtype(), DType::bf16);
  EXPECT_EQ(all.at("ids").dtype(), DType::i64);

  // Asking for an integer dtype is a mistake, reported with the file and tensor.
  std::string e = error_of([&] { f.load("w", DType::i32); });
  EXPECT_NE(e.find(path), std::string::npos) << e;
  EXPECT_NE(e.find("\"w\""), std::string::npos) << e;
  e = error_of([&] { f.load("nope"); });
  EXPECT_NE(e.find(path), std::string::npos) << e;
  EXPECT_NE(e.find("no tensor named \"nope\""), std::string::npos) << e;
  e = error_of([&] { f.info("nope"); });
  EXPECT_NE(e.find("no tensor named \"nope\""), std::string::npos) << e;
}

TEST(Safetensors, UnsupportedDtypesOpenButDoNotLoad) {
  TempDir dir;
  const std::string path = dir.file("q.safetensors");
  const char* header = R"({"q": {"dtype": "I8", "shape": [4], "data_offsets": [0, 4]},
    "u": {"dtype": "U8", "shape": [2], "data_offsets": [4, 6]},
    "s": {"dtype": "I16", "shape": [1], "data_offsets": [6, 8]},
    "e4": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [8, 10]},
    "e5": {"dtype": "F8_E5M2", "shape": [2], "data_offsets": [10, 12]},
    "ok": {"dtype": "F32", "shape": [1], "data_offsets": [12, 16]}})";
  write_raw(path, st_file(header, std::string(12, '\x01') + raw_bytes(std::vector<float>{2.5f}), 8));
  SafetensorsFile f(path);
  EXPECT_EQ(f.info("q").dtype, "I8");
  EXPECT_EQ(f.info("q").wick_dtype, std::nullopt);
  EXPECT_EQ(f.info("e4").dtype, "F8_E4M3");
  EXPECT_EQ(f.load("ok").item<float>(), 2.5f);
  for (const char* name : {"q", "u", "s", "e4", "e5"}) {
    std::string e = error_of([&] { f.load(name); });
    EXPECT_NE(e.find(path), std::string::npos) << e;
    EXPECT_NE(e.find("cannot be loaded"), std::string::npos) << e;
    EXPECT_NE(e.find(f.info(name).dtype), std::string::npos) << e;
  }
  EXPECT_NE(error_of([&] { f.load_all(); }).find("cannot be loaded"), std::string::npos);
}

TEST(Safetensors, BoolBytesOtherThanZeroOrOneAreRejected) {
  TempDir dir;
  const std::string path = dir.file("b.safetensors");
  write_raw(path, st_file(R"({"m": {"dtype": "BOOL", "shape": [3], "data_offsets": [0, 3]}})",
                          std::string("\x01\x00\x02", 3)));
  std::string e = error_of([&] { SafetensorsFile(path).load("m"); });
  EXPECT_NE(e.find(path), std::string::npos) << e;
  EXPECT_NE(e.find("element 2 is byte 2"), std::string::npos) << e;
}

TEST(Safetensors, RoundtripsEveryDtypeAndLayout) {
  TempDir dir;
  const std::string path = dir.file("all.safetensors");
  std::map<std::string, Tensor> out;
  std::map<std::string, HostArray> want;
  uint64_t seed = 1;
  for (DType dt : kAllTypes) {
    for (Layout l : kLayouts) {
      Input in = random_input({3, 5}, dt, l, seed++, -100, 100);
      std::string name = std::string(wick::dtype_name(dt)) + "/" + layout_name(l);
      out[name] = in.tensor;
      want[name] = in.host;
    }
    std::string name = std::string(wick::dtype_name(dt));
    HostArray s = random_host({}, dt, seed++, -100, 100);
    out[name + "/scalar"] = to_tensor(s, dt);
    want[name + "/scalar"] = s;
    out[name + "/empty"] = wick::zeros({0, 4}, dt);
    want[name + "/empty"] = HostArray({0, 4});
    HostArray big = random_host({3, 4, 5}, dt, seed++, -100, 100);
    out[name + "/permuted3d"] = wick::transpose(to_tensor(big, dt), {2, 0, 1});
    want[name + "/permuted3d"] = transpose(big, {2, 0, 1});
  }
  wick::save_safetensors(path, out);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"all.safetensors"});

  auto back = wick::load_safetensors(path);
  ASSERT_EQ(back.size(), out.size());
  for (const auto& [name, t] : out) {
    SCOPED_TRACE(name);
    const Tensor& got = back.at(name);
    EXPECT_EQ(got.dtype(), t.dtype());
    EXPECT_EQ(got.shape(), t.shape());
    EXPECT_TRUE(all_close(to_host(got), want.at(name), Tol{0, 0}));
  }
}

TEST(Safetensors, WriterOutputFollowsTheFormat) {
  TempDir dir;
  const std::string path = dir.file("w.safetensors");
  std::vector<float> fv = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -1.0f};
  Tensor f = Tensor::from_vector(fv, {2, 3});
  Tensor ids = Tensor::from_vector(std::vector<int64_t>{3, -4}, {2});
  Tensor hb = wick::astype(Tensor::from_vector(std::vector<float>{1, 2, 3}, {3}), DType::bf16);
  Tensor m = Tensor::from_vector(std::vector<bool>{true, false, true}, {3});
  // A transposed view must be written as its row-major values.
  wick::save_safetensors(path, {{"f", f}, {"ft", wick::transpose(f)}, {"ids", ids}, {"hb", hb},
                                {"m", m}},
                         {{"format", "pt"}});
  std::string bytes = read_raw(path);
  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  ASSERT_LE(8 + n, bytes.size());
  EXPECT_EQ((8 + n) % 8, 0u) << "the data block must start 8-byte aligned";
  std::string header = bytes.substr(8, n);
  auto end = header.find_last_not_of(' ');
  EXPECT_EQ(header[end], '}');
  auto j = nlohmann::json::parse(header);
  const std::string data = bytes.substr(8 + n);

  auto check = [&](const std::string& name, const char* dtype, std::vector<int64_t> shape,
                   const std::string& raw, size_t align) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(j.contains(name));
    EXPECT_EQ(j[name]["dtype"], dtype);
    EXPECT_EQ(j[name]["shape"].get<std::vector<int64_t>>(), shape);
    auto off = j[name]["data_offsets"].get<std::vector<uint64_t>>();
    ASSERT_EQ(off.size(), 2u);
    EXPECT_EQ(off[1] - off[0], raw.size());
    EXPECT_EQ(off[0] % align, 0u);
    ASSERT_LE(off[1], data.size());
    EXPECT_EQ(data.substr(off[0], off[1] - off[0]), raw);
  };
  check("f", "F32", {2, 3}, raw_bytes(fv), 4);
  check("ft", "F32", {3, 2}, raw_bytes(std::vector<float>{1.5f, 0.0f, -2.0f, 7.0f, 3.25f, -1.0f}), 4);
  check("ids", "I64", {2}, raw_bytes(std::vector<int64_t>{3, -4}), 8);
  check("hb", "BF16", {3}, raw_bytes(std::vector<uint16_t>{0x3F80, 0x4000, 0x4040}), 2);
  check("m", "BOOL", {3}, std::string("\x01\x00\x01", 3), 1);
  EXPECT_EQ(j["__metadata__"], (nlohmann::json{{"format", "pt"}}));
  EXPECT_EQ(j.size(), 6u);
  EXPECT_EQ(data.size(), 24u + 24u + 16u + 6u + 3u) << "no gaps between tensors";

  // Without metadata there is no __metadata__ entry; with it, it roundtrips.
  wick::save_safetensors(path, {{"f", f}});
  EXPECT_EQ(read_raw(path).find("__metadata__"), std::string::npos);
  EXPECT_TRUE(SafetensorsFile(path).metadata().empty());
  std::map<std::string, std::string> meta = {{"format", "pt"}, {"empty", ""},
                                             {"unicode", "\xe2\x9c\x93 \"quoted\"\n"}};
  wick::save_safetensors(path, {}, meta);
  EXPECT_EQ(SafetensorsFile(path).metadata(), meta);
  EXPECT_TRUE(SafetensorsFile(path).names().empty());
}

TEST(Safetensors, LoadsAreZeroCopyViewsOfTheMapping) {
  TempDir dir;
  const std::string path = dir.file("z.safetensors");
  std::map<std::string, Tensor> src;
  uint64_t seed = 10;
  for (DType dt : kAllTypes)
    src[wick::dtype_name(dt)] = to_tensor(random_host({64, 33}, dt, seed++), dt);
  wick::save_safetensors(path, src);

  std::map<std::string, Tensor> loaded;
  size_t base = quiesce();
  {
    SafetensorsFile f(path);
    for (const std::string& name : f.names()) loaded[name] = f.load(name);
  }
  EXPECT_EQ(active(), base) << "zero-copy loads must not allocate";
  for (const auto& [name, t] : loaded) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(in_mapping_of(data_ptr(t), path));
  }
  // The tensors keep the mapping alive after the file object is gone and even after the file is
  // deleted.
  std::filesystem::remove(path);
  for (const auto& [name, t] : loaded) {
    SCOPED_TRACE(name);
    EXPECT_EQ(bytes_of(t), bytes_of(src.at(name)));
  }

  const std::string hand = dir.file("hand.safetensors");
  write_raw(hand, st_file(kHeader, hand_data(), 8));
  SafetensorsFile f(hand);
  for (const std::string& name : f.names()) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(in_mapping_of(data_ptr(f.load(name)), hand));
  }
}

TEST(Safetensors, MisalignedDataIsCopiedNotViewed) {
  TempDir dir;
  const std::string path = dir.file("odd.safetensors");
  std::string header = R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]},
                           "d": {"dtype": "F64", "shape": [1], "data_offsets": [12, 20]}})";
  while ((8 + header.size()) % 8 != 1) header += ' ';  // data block starts at 8k + 1
  write_raw(path, st_file(header, raw_bytes(std::vector<float>{1, 2, 3}) +
                                      raw_bytes(std::vector<double>{-0.5})));
  SafetensorsFile f(path);
  Tensor w = f.load("w"), d = f.load("d");
  EXPECT_EQ(w.to_vector<float>(), (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(d.item<double>(), -0.5);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(data_ptr(w)) % 4, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(data_ptr(d)) % 8, 0u);
  EXPECT_FALSE(in_mapping_of(data_ptr(w), path));
}

TEST(Safetensors, TheEngineNeverWritesIntoTheMapping) {
  // Ops whose only input is a freshly loaded tensor may reuse an input buffer for their output;
  // a mapped tensor must never be lent that way (the mapping is read-only, and another load of
  // the same tensor shares the bytes).
  TempDir dir;
  const std::string path = dir.file("m.safetensors");
  std::vector<float> v(1024);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) * 0.01f;
  wick::save_safetensors(path, {{"x", Tensor::from_vector(v, {32, 32})}});
  SafetensorsFile f(path);
  Tensor keep = f.load("x");
  Tensor a = wick::exp(f.load("x") * 1.0);
  Tensor b = wick::softmax(f.load("x"), -1);
  Tensor c = f.load("x") + 1.0;
  // slice_update reuses its input's buffer when nobody else holds it: that of a fresh load.
  Tensor d = wick::slice_update(f.load("x"), wick::zeros({1, 32}), 0, 3);
  wick::eval({a, b, c, d});
  std::vector<float> dv = d.to_vector<float>();
  for (size_t i = 0; i < v.size(); ++i) ASSERT_EQ(dv[i], i / 32 == 3 ? 0.0f : v[i]);
  std::vector<float> got = c.to_vector<float>();
  for (size_t i = 0; i < v.size(); ++i) ASSERT_EQ(got[i], v[i] + 1.0f);
  // A compiled elementwise chain runs as one fused kernel that may also reuse its input.
  wick::CompiledFunction fused = wick::compile([](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{wick::exp(in[0] * 0.5) + 1.0};
  });
  for (int rep = 0; rep < 2; ++rep) {
    std::vector<float> got_fused = fused({f.load("x")})[0].to_vector<float>();
    for (size_t i = 0; i < v.size(); ++i)
      ASSERT_FLOAT_EQ(got_fused[i], std::exp(v[i] * 0.5f) + 1.0f);
  }
  EXPECT_GT(fused.stats().fused_elementwise, 0u);
  EXPECT_EQ(keep.to_vector<float>(), v);
  EXPECT_EQ(f.load("x").to_vector<float>(), v);
}

TEST(Safetensors, SaveRejectsBadNamesAndTensorsWithoutLeavingFiles) {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  Tensor x = wick::ones({2});
  auto expect_fails = [&](const std::map<std::string, Tensor>& t,
                          const std::map<std::string, std::string>& meta, const std::string& what) {
    std::string e = error_of([&] { wick::save_safetensors(path, t, meta); });
    EXPECT_NE(e.find(path), std::string::npos) << e;
    EXPECT_NE(e.find(what), std::string::npos) << e;
    EXPECT_TRUE(dir.entries().empty());
  };
  expect_fails({{"__metadata__", x}}, {}, "reserved");
  expect_fails({{"ok", x}, {"null", Tensor()}}, {}, "null Tensor");
  expect_fails({{"bad\xff", x}}, {}, "UTF-8");
  expect_fails({{"ok", x}}, {{"k", "\xc3"}}, "UTF-8");
}

TEST(Safetensors, FailedWritesLeaveNoPartialOrTemporaryFile) {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  Tensor good = wick::ones({4});
  wick::save_safetensors(path, {{"good", good}});
  const std::string before = read_raw(path);

  // An evaluation that fails (an index out of range).
  Tensor bad = wick::take(wick::ones({3}), Tensor::from_vector(std::vector<int64_t>{7}, {1}), 0);
  std::string e = error_of([&] { wick::save_safetensors(path, {{"good", good}, {"bad", bad}}); });
  EXPECT_NE(e, "<no error>");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"model.safetensors"});
  EXPECT_EQ(read_raw(path), before);

  // The file system refusing the write halfway (a file size limit, as a full disk would).
  Tensor big = wick::zeros({1 << 18});  // 1 MiB
  big.eval();
  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = 64 * 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  e = error_of([&] { wick::save_safetensors(path, {{"big", big}}); });
  ::setrlimit(RLIMIT_FSIZE, &old);
  ::signal(SIGXFSZ, old_handler);
  EXPECT_NE(e.find(path), std::string::npos) << e;
  EXPECT_NE(e.find("write failed"), std::string::npos) << e;
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"model.safetensors"});
  EXPECT_EQ(read_raw(path), before);
  EXPECT_EQ(SafetensorsFile(path).load("good").to_vector<float>(), (std::vector<float>(4, 1.0f)));
}

}  // namespace
