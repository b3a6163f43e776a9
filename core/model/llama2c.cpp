#include "core/model/llama2c.h"

#include <climits>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "core/common/error.h"
#include "core/common/mapped_file.h"
#include "core/model/model.h"

namespace aqlm {
namespace fs = std::filesystem;

namespace {

constexpr size_t kHeaderBytes = 7 * sizeof(int32_t);
constexpr uint32_t kNewExportMagic = 0x616b3432;  // "ak42": llama2.c export versions 1 and 2

Llama2cHeader parse_header(const uint8_t* bytes, size_t size, const std::string& path) {
  AQLM_CHECK(size >= kHeaderBytes, path, ": truncated: a llama2.c header needs ", kHeaderBytes, " bytes but the file has ",
             size);
  int32_t f[7];
  std::memcpy(f, bytes, sizeof(f));
  AQLM_CHECK(uint32_t(f[0]) != kNewExportMagic, path,
             ": llama2.c export version ", f[1], " (magic \"ak42\") is not supported; export with the legacy version 0");
  Llama2cHeader h;
  h.dim = f[0];
  h.hidden_dim = f[1];
  h.n_layers = f[2];
  h.n_heads = f[3];
  h.n_kv_heads = f[4];
  h.shared_classifier = f[5] > 0;
  h.vocab_size = f[5] > 0 ? f[5] : (f[5] == INT32_MIN ? 0 : -f[5]);
  h.seq_len = f[6];
  AQLM_CHECK(h.dim > 0 && h.hidden_dim > 0 && h.n_layers > 0 && h.n_heads > 0 && h.n_kv_heads > 0 && h.vocab_size > 0 &&
                 h.seq_len > 0,
             path, ": not a llama2.c model: header fields (dim ", h.dim, ", hidden_dim ", h.hidden_dim, ", n_layers ",
             h.n_layers, ", n_heads ", h.n_heads, ", n_kv_heads ", h.n_kv_heads, ", vocab_size ", f[5], ", seq_len ",
             h.seq_len, ") must be non-zero");
  AQLM_CHECK(h.dim % h.n_heads == 0 && (h.dim / h.n_heads) % 2 == 0, path, ": inconsistent llama2.c header: dim ", h.dim,
             " does not split into ", h.n_heads, " heads of an even size");
  AQLM_CHECK(h.n_heads % h.n_kv_heads == 0, path, ": inconsistent llama2.c header: n_heads ", h.n_heads,
             " is not a multiple of n_kv_heads ", h.n_kv_heads);
  return h;
}

ModelConfig config_from_header(const Llama2cHeader& h) {
  ModelConfig c;
  c.arch = Architecture::Llama;
  c.hidden_size = h.dim;
  c.intermediate_size = h.hidden_dim;
  c.num_layers = h.n_layers;
  c.num_heads = h.n_heads;
  c.num_kv_heads = h.n_kv_heads;
  c.head_dim = h.dim / h.n_heads;
  c.vocab_size = h.vocab_size;
  c.max_position_embeddings = h.seq_len;
  c.rope_theta = 10000.0;
  c.rms_norm_eps = 1e-5;
  c.tie_word_embeddings = h.shared_classifier;
  c.bos_token_id = 1;  // the llama2.c tokenizer: 0 <unk>, 1 <s>, 2 </s>
  c.eos_token_ids = {2};
  c.torch_dtype = "float32";
  c.validate();
  return c;
}

// a * b, or INT64_MAX when that overflows: a wild header must read as "truncated", not wrap.
int64_t saturating_mul(int64_t a, int64_t b) {
  if (a != 0 && b > INT64_MAX / a) return INT64_MAX;
  return a * b;
}

}  // namespace

Llama2cHeader read_llama2c_header(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  AQLM_CHECK(in, path, ": cannot open: ", std::strerror(errno));
  uint8_t bytes[kHeaderBytes];
  in.read(reinterpret_cast<char*>(bytes), sizeof(bytes));
  return parse_header(bytes, size_t(in.gcount()), path);
}

Llama2cWeights load_llama2c_weights(const std::string& path) {
  auto file = std::make_shared<MappedFile>(path);
  Llama2cWeights out;
  out.header = parse_header(file->data(), file->size(), path);
  const Llama2cHeader& h = out.header;
  out.config = config_from_header(h);

  const int64_t L = h.n_layers, dim = h.dim, hidden = h.hidden_dim, vocab = h.vocab_size;
  const int64_t head_dim = dim / h.n_heads, kv_dim = head_dim * h.n_kv_heads;
  const std::shared_ptr<const void> owner = file;
  const float* const base = reinterpret_cast<const float*>(file->data() + kHeaderBytes);
  const int64_t available = int64_t((file->size() - kHeaderBytes) / sizeof(float));
  int64_t offset = 0;  // in floats from the end of the header

  // Claims the next `count` floats of the file for `what`, checking they are there.
  auto take = [&](int64_t count, const std::string& what) {
    const int64_t start = offset;
    AQLM_CHECK(count <= available - start, path, ": truncated: ", what, " ends at byte ",
               count > (INT64_MAX - int64_t(kHeaderBytes)) / 4 - start ? std::string("(beyond any file size)")
                                                                      : std::to_string(kHeaderBytes + (start + count) * 4),
               " but the file has ", file->size());
    offset = start + count;
    return base + start;
  };
  auto add_layers = [&](const std::string& suffix, std::vector<int64_t> shape) {
    int64_t per_layer = 1;
    for (int64_t d : shape) per_layer = saturating_mul(per_layer, d);
    const float* stacked = take(saturating_mul(per_layer, L), "model.layers.*." + suffix);
    for (int64_t l = 0; l < L; ++l)
      out.weights.add_view(layer_prefix(int(l)) + suffix, TensorView{DType::F32, shape, stacked + l * per_layer}, owner);
  };

  out.weights.add_view("model.embed_tokens.weight", TensorView{DType::F32, {vocab, dim}, take(saturating_mul(vocab, dim), "token embedding")},
                       owner);
  add_layers("input_layernorm.weight", {dim});
  add_layers("self_attn.q_proj.weight", {dim, dim});
  add_layers("self_attn.k_proj.weight", {kv_dim, dim});
  add_layers("self_attn.v_proj.weight", {kv_dim, dim});
  add_layers("self_attn.o_proj.weight", {dim, dim});
  add_layers("post_attention_layernorm.weight", {dim});
  add_layers("mlp.gate_proj.weight", {hidden, dim});
  add_layers("mlp.down_proj.weight", {dim, hidden});
  add_layers("mlp.up_proj.weight", {hidden, dim});
  out.weights.add_view("model.norm.weight", TensorView{DType::F32, {dim}, take(dim, "final norm")}, owner);
  take(int64_t(h.seq_len) * head_dim, "RoPE table");  // freq_cis_real and freq_cis_imag, unused
  if (!h.shared_classifier)
    out.weights.add_view("lm_head.weight", TensorView{DType::F32, {vocab, dim}, take(saturating_mul(vocab, dim), "classifier")}, owner);
  const size_t expected = kHeaderBytes + size_t(offset) * 4;
  AQLM_CHECK(file->size() == expected, path, ": ", file->size() - expected,
             " unexpected bytes after the last tensor (the header says the file ends at byte ", expected,
             "); is this a llama2.c version 0 export?");

  // q and k: interleaved-pair RoPE rows -> the half-split layout, into owned copies.
  for (int l = 0; l < h.n_layers; ++l) {
    for (const auto& [proj, heads] : {std::pair<const char*, int>{"self_attn.q_proj.weight", h.n_heads},
                                      std::pair<const char*, int>{"self_attn.k_proj.weight", h.n_kv_heads}}) {
      const std::string name = layer_prefix(l) + proj;
      const TensorView view = out.weights.get(name);
      std::vector<uint8_t> bytes(view.nbytes());
      std::memcpy(bytes.data(), view.data, bytes.size());
      unpermute_rope_rows(reinterpret_cast<float*>(bytes.data()), int(view.dim(0)), int(view.dim(1)), heads);
      out.weights.add_owned(name, DType::F32, view.shape, std::move(bytes));
    }
  }
  return out;
}

std::string find_llama2c_tokenizer(const std::string& model_path, int vocab_size) {
  const fs::path dir = fs::path(model_path).parent_path();
  for (const std::string& name : {"tok" + std::to_string(vocab_size) + ".bin", std::string("tokenizer.bin")}) {
    const fs::path candidate = dir / name;
    if (fs::is_regular_file(candidate)) return candidate.string();
  }
  return {};
}

}  // namespace aqlm
