// The safetensors reader against files of the reference Python `safetensors` package, the
// streaming writer by round trip, float16/bfloat16 rounding against numpy / exact rational
// rounding (scripts/reference/make_hf_fixtures.py), and every malformed-file error.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "core/common/error.h"
#include "core/common/paths.h"
#include "core/common/mapped_file.h"
#include "core/model/safetensors.h"
#include "tests/support/test_paths.h"

using namespace aqlm;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

fs::path fixture(const std::string& name) { return test::source_path("tests/fixtures/model/" + name); }

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

// A safetensors file from a header JSON text and a data area.
std::string make_file(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

void expect_error(const std::function<void()>& fn, const std::vector<std::string>& fragments) {
  try {
    fn();
    ADD_FAILURE() << "expected an error containing '" << fragments.front() << "'";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << "one line: " << m;
    for (const auto& f : fragments) EXPECT_NE(m.find(f), std::string::npos) << "'" << f << "' not in: " << m;
  }
}

template <typename T>
std::vector<double> values_as_double(const TensorView& t) {
  std::vector<double> out;
  for (int64_t i = 0; i < t.numel(); ++i) out.push_back(double(t.as<T>()[i]));
  return out;
}

std::vector<double> values_of(const TensorView& t) {
  switch (t.dtype) {
    case DType::F64: return values_as_double<double>(t);
    case DType::I8: return values_as_double<int8_t>(t);
    case DType::I16: return values_as_double<int16_t>(t);
    case DType::I32: return values_as_double<int32_t>(t);
    case DType::I64: return values_as_double<int64_t>(t);
    case DType::U8: return values_as_double<uint8_t>(t);
    default: {
      std::vector<float> f(size_t(t.numel()));
      convert_to_f32(t.dtype, t.data, f.data(), f.size());
      return std::vector<double>(f.begin(), f.end());
    }
  }
}

}  // namespace

TEST(Safetensors, ReadsFileOfThePythonPackage) {
  const SafetensorsFile file(fixture("st_mixed.safetensors").string());
  const json expected = json::parse(read_text_file(fixture("st_mixed.json")));
  EXPECT_EQ(file.metadata().at("format"), "pt");
  EXPECT_EQ(file.metadata().at("note"), "fixture");
  ASSERT_EQ(file.tensors().size(), expected.size());
  for (const auto& [name, e] : expected.items()) {
    SCOPED_TRACE(name);
    const SafetensorsTensor* t = file.find(name);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(dtype_name(t->view.dtype), e["dtype"].get<std::string>());
    EXPECT_EQ(t->view.shape, e["shape"].get<std::vector<int64_t>>());
    if (t->view.dtype == DType::I64) {  // beyond double's 53 bits: compare as integers
      const auto v = e["values"].get<std::vector<int64_t>>();
      for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(t->view.as<int64_t>()[i], v[i]);
    } else {
      EXPECT_EQ(values_of(t->view), e["values"].get<std::vector<double>>());  // exact: same bits
    }
  }
  WeightStore store;
  file.add_to(store);
  EXPECT_EQ(store.size(), expected.size());
  EXPECT_EQ(store.get("j.scalar").shape, std::vector<int64_t>{});
  EXPECT_EQ(store.get("j.scalar").as<float>()[0], 3.5f);
}

TEST(Safetensors, FloatConversionsRoundToNearestEven) {
  const json cases = json::parse(read_text_file(fixture("st_conversions.json")));
  ASSERT_GT(cases.size(), 300u);
  for (const auto& c : cases) {
    const uint32_t bits = c["f32_bits"].get<uint32_t>();
    float f;
    std::memcpy(&f, &bits, 4);
    uint16_t h = 0, b = 0;
    convert_float_dtype(DType::F32, &f, DType::F16, &h, 1);
    convert_float_dtype(DType::F32, &f, DType::BF16, &b, 1);
    EXPECT_EQ(h, c["f16_bits"].get<uint16_t>()) << "f16 of " << f;
    if (c["bf16_bits"].is_null()) {
      EXPECT_EQ(b & 0x7f80, 0x7f80) << "bf16 of NaN stays NaN";
      EXPECT_NE(b & 0x7f, 0);
    } else {
      EXPECT_EQ(b, c["bf16_bits"].get<uint16_t>()) << "bf16 of " << f;
    }
  }
  const int32_t i = 3;
  float out;
  expect_error([&] { convert_float_dtype(DType::I32, &i, DType::F32, &out, 1); }, {"I32", "float"});
}

TEST(Safetensors, WriterRoundTripIsBitExact) {
  const fs::path dir = test::temp_dir("st-roundtrip");
  const std::vector<float> a = {1.5f, -2.25f, 3.0e-8f, 65520.0f, -0.0f, 7.0f};
  const std::vector<int8_t> codes = {-128, 127, 0, 5, -1};
  const std::vector<uint16_t> halves = {0x3c00, 0xc000, 0x0001};
  std::vector<SafetensorsEntry> entries = {{"codes", DType::I8, {5}},
                                           {"a_as_f32", DType::F32, {2, 3}},
                                           {"a_as_f16", DType::F16, {2, 3}},
                                           {"a_as_bf16", DType::BF16, {3, 2}},
                                           {"halves", DType::F16, {3}},
                                           {"empty", DType::F32, {0, 3}}};
  const fs::path path = dir / "x.safetensors";
  {
    SafetensorsWriter w(path.string(), entries, {{"format", "pt"}});
    // Any order: the layout was fixed up front.
    w.write("halves", TensorView{DType::F16, {3}, halves.data()});
    w.write("a_as_bf16", TensorView{DType::F32, {3, 2}, a.data()});
    w.write("codes", TensorView{DType::I8, {5}, codes.data()});
    w.write("a_as_f32", TensorView{DType::F32, {2, 3}, a.data()});
    w.write("empty", TensorView{DType::F32, {0, 3}, nullptr});
    w.write("a_as_f16", TensorView{DType::F32, {2, 3}, a.data()});
    w.finish();
  }
  const SafetensorsFile file(path.string());
  EXPECT_EQ(file.metadata().at("format"), "pt");
  uint64_t header_len = 0;
  std::memcpy(&header_len, file.mapping()->data(), 8);
  EXPECT_EQ(header_len % 8, 0u);  // padded so the data starts 8-byte aligned
  EXPECT_EQ(fs::file_size(path), 8 + header_len + 24 + 12 + 12 + 6 + 0 + 5);
  EXPECT_EQ(file.tensors().back().name, "codes");  // the 1-byte elements come last
  for (const auto& t : file.tensors())  // every tensor aligned to its element size
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.view.data) % dtype_size(t.view.dtype), 0u) << t.name;
  EXPECT_EQ(std::memcmp(file.find("a_as_f32")->view.data, a.data(), 24), 0);
  EXPECT_EQ(std::memcmp(file.find("codes")->view.data, codes.data(), 5), 0);
  EXPECT_EQ(std::memcmp(file.find("halves")->view.data, halves.data(), 6), 0);
  const auto* f16 = file.find("a_as_f16")->view.as<uint16_t>();
  const auto* bf16 = file.find("a_as_bf16")->view.as<uint16_t>();
  // numpy: a.astype(float16); bfloat16 by hand from the float32 bits (3e-8 is 0x3300d959: rounds up;
  // 65520 is 0x477ff000: rounds up).
  const std::vector<uint16_t> f16_expected = {0x3e00, 0xc080, 0x0001, 0x7c00, 0x8000, 0x4700};
  const std::vector<uint16_t> bf16_expected = {0x3fc0, 0xc010, 0x3301, 0x4780, 0x8000, 0x40e0};
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(f16[i], f16_expected[i]) << i;
    EXPECT_EQ(bf16[i], bf16_expected[i]) << i;
  }
  EXPECT_EQ(file.find("empty")->view.numel(), 0);
  fs::remove_all(dir);
}

TEST(Safetensors, WriterRefusesMisuse) {
  const fs::path dir = test::temp_dir("st-misuse");
  const std::vector<float> v(6, 1.0f);
  const std::string path = (dir / "m.safetensors").string();
  expect_error([&] { SafetensorsWriter w(path, {{"t", DType::F32, {2}}, {"t", DType::F32, {2}}}); },
               {"m.safetensors", "t", "declared twice"});
  SafetensorsWriter w(path, {{"t", DType::F32, {2, 3}}, {"u", DType::I32, {1}}});
  expect_error([&] { w.write("nope", TensorView{DType::F32, {2, 3}, v.data()}); }, {"m.safetensors", "nope", "not declared"});
  expect_error([&] { w.write("t", TensorView{DType::F32, {3, 2}, v.data()}); }, {"t", "[3, 2]", "[2, 3]"});
  expect_error([&] { w.write("u", TensorView{DType::F32, {1}, v.data()}); }, {"F32", "I32"});
  w.write("t", TensorView{DType::F32, {2, 3}, v.data()});
  expect_error([&] { w.write("t", TensorView{DType::F32, {2, 3}, v.data()}); }, {"t", "written twice"});
  expect_error([&] { w.finish(); }, {"m.safetensors", "u", "never written"});
  expect_error([&] { SafetensorsWriter bad((dir / "no" / "such" / "x.safetensors").string(), {}); },
               {"x.safetensors", "cannot create"});
  fs::remove_all(dir);
}

TEST(Safetensors, WriteFailureIsAnErrorNamingTheFile) {
  // A file size limit (as a full disk would) makes write fail with EFBIG; done in a child
  // process so that the limit and the ignored SIGXFSZ do not touch the test runner.
  const fs::path dir = test::temp_dir("st-full");
  const std::string path = (dir / "big.safetensors").string();
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipe_fds[0]);
    std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{64 * 1024, 64 * 1024};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    std::string message = "no error";
    try {
      const std::vector<float> values(100000, 0.5f);
      SafetensorsWriter w(path, {{"t", DType::F32, {100000}}});
      w.write("t", TensorView{DType::F32, {100000}, values.data()});
      w.finish();
    } catch (const Error& e) {
      message = e.what();
    }
    (void)!::write(pipe_fds[1], message.data(), message.size());
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  std::string message;
  char buffer[512];
  ssize_t n;
  while ((n = ::read(pipe_fds[0], buffer, sizeof(buffer))) > 0) message.append(buffer, size_t(n));
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_NE(message.find("big.safetensors"), std::string::npos) << message;
  EXPECT_NE(message.find("write failed"), std::string::npos) << message;
  fs::remove_all(dir);
}

TEST(Safetensors, MalformedFilesNameFileTensorAndCause) {
  const fs::path dir = test::temp_dir("st-bad");
  auto open = [](const fs::path& p) { return [p] { SafetensorsFile f(p.string()); }; };
  const std::string data(24, '\0');
  struct Case {
    const char* file;
    std::string bytes;
    std::vector<std::string> fragments;
  };
  const std::vector<Case> cases = {
      {"short.safetensors", "abc", {"short.safetensors", "truncated", "8-byte header length"}},
      {"huge_header.safetensors", std::string("\xff\xff\xff\xff\xff\xff\x00\x00", 8) + "{}",
       {"huge_header.safetensors", "header length", "implausible"}},
      {"cut_header.safetensors", make_file("{\"a\":1}", "").substr(0, 12), {"cut_header.safetensors", "truncated", "header"}},
      {"not_json.safetensors", make_file("{nope", data), {"not_json.safetensors", "not valid JSON"}},
      {"no_offsets.safetensors", make_file(R"({"w":{"dtype":"F32","shape":[2]}})", data),
       {"no_offsets.safetensors", "tensor w", "data_offsets"}},
      {"dtype.safetensors", make_file(R"({"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", data),
       {"dtype.safetensors", "tensor w", "F8_E4M3", "not supported"}},
      {"weird_dtype.safetensors", make_file(R"({"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,2]}})", data),
       {"weird_dtype.safetensors", "tensor w", "Q4", "not a safetensors dtype"}},
      {"past_end.safetensors", make_file(R"({"w":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}})", data),
       {"past_end.safetensors", "truncated", "tensor w", "ends at byte"}},
      {"mismatch.safetensors", make_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", data),
       {"mismatch.safetensors", "tensor w", "[3]", "needs 12 bytes", "16"}},
      {"reversed.safetensors", make_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", data),
       {"reversed.safetensors", "tensor w", "reversed"}},
      {"overlap.safetensors",
       make_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                 data),
       {"overlap.safetensors", "overlap"}},
      {"negative.safetensors", make_file(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", data),
       {"negative.safetensors", "tensor w", "dimension"}},
      {"overflow.safetensors",
       make_file(R"({"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,16]}})", data),
       {"overflow.safetensors", "tensor w", "does not fit"}},
      {"metadata.safetensors", make_file(R"({"__metadata__":{"a":1}})", ""), {"metadata.safetensors", "__metadata__", "'a'"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    write_bytes(dir / c.file, c.bytes);
    expect_error(open(dir / c.file), c.fragments);
  }
  expect_error(open(dir / "absent.safetensors"), {"absent.safetensors", "cannot open"});
  fs::remove_all(dir);
}

TEST(Safetensors, ShardedFolderErrors) {
  const fs::path dir = test::temp_dir("st-shards");
  fs::copy(fixture("hf_tiny_sharded"), dir / "ok");
  {
    WeightStore store;
    load_safetensors_folder((dir / "ok").string(), store);
    EXPECT_EQ(store.size(), 12u);
  }
  auto load = [](const fs::path& p) {
    return [p] {
      WeightStore store;
      load_safetensors_folder(p.string(), store);
    };
  };
  expect_error(load(dir / "nothing"), {"nothing", "no model.safetensors"});

  const json index = json::parse(read_text_file(dir / "ok" / "model.safetensors.index.json"));
  auto variant = [&](const std::string& name, const json& new_index) {
    fs::copy(dir / "ok", dir / name);
    write_bytes(dir / name / "model.safetensors.index.json", new_index.dump());
    return dir / name;
  };
  json missing_shard = index;
  missing_shard["weight_map"]["model.norm.weight"] = "model-00009-of-00009.safetensors";
  expect_error(load(variant("missing_shard", missing_shard)), {"model-00009-of-00009.safetensors", "missing",
                                                               "model.norm.weight"});
  json wrong_shard = index;
  const std::string norm_shard = index["weight_map"]["model.norm.weight"].get<std::string>();
  const std::string other = norm_shard == "model-00001-of-00002.safetensors" ? "model-00002-of-00002.safetensors"
                                                                             : "model-00001-of-00002.safetensors";
  wrong_shard["weight_map"]["model.norm.weight"] = other;
  expect_error(load(variant("wrong_shard", wrong_shard)), {other, "model.norm.weight", "not in this shard"});
  json escape = index;
  escape["weight_map"]["model.norm.weight"] = "../../etc/passwd";
  expect_error(load(variant("escape", escape)), {"model.safetensors.index.json", "inside the folder"});
  expect_error(load(variant("no_map", json{{"metadata", json::object()}})), {"weight_map"});
  // Two shards holding the same tensors (a copy of one shard listed under another name).
  fs::copy(dir / "ok", dir / "twice");
  fs::copy_file(dir / "twice" / norm_shard, dir / "twice" / "extra.safetensors");
  json twice = index;
  twice["weight_map"]["model.norm.weight"] = "extra.safetensors";
  write_bytes(dir / "twice" / "model.safetensors.index.json", twice.dump());
  expect_error(load(dir / "twice"), {norm_shard, "appears in more than one file"});
  fs::remove_all(dir);
}
