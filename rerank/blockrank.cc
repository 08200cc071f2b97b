#include "rerank/blockrank.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "model/kernels.h"
#include "model/safetensors.h"
#include "common/coding.h"

namespace quarry {

namespace {

constexpr char kInstruction[] =
    "You will be given a query and a list of documents. Each document will be formatted as ID: <id> | "
    "CONTENT: <content> | END ID: <id>. You need to read carefully and understand all of them and your goal is to "
    "find all document(s) from the list that can help answer the query.";
constexpr char kFinalPrefix[] = "\n\n====== Now let's start! ======\nWhich document is most relevant to answer the "
                                "query? Print out the ID of the document.\nQuery: ";
constexpr char kFinalSuffix[] = "\nThe following document(s) can help answer the query:";
constexpr char kAnswerPrefix[] = "Final Answer: ";
constexpr char kContentFreeQuery[] = "N/A";  // Chen et al. 2024's content-free query

// The prompt is one user turn of the model's chat template, then the start of the answer.
struct ChatFrame {
  const char* open;   // before the instruction
  const char* close;  // after the query block's text, before kAnswerPrefix
};
// Mistral v3 (the authors' rendering) by default; ChatML (SmolLM2, Qwen2) when the vocabulary has
// <|im_start|>; Gemma's turns when it has <start_of_turn>. No system turn: the templates' default system
// prompts are left out.
ChatFrame FrameFor(const model::Tokenizer& tokenizer) {
  if (tokenizer.PieceToId("<|im_start|>") >= 0) return {"<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n"};
  if (tokenizer.PieceToId("<start_of_turn>") >= 0) {
    return {"<bos><start_of_turn>user\n", "<end_of_turn>\n<start_of_turn>model\n"};
  }
  return {"<s>[INST] ", "[/INST] "};
}

size_t RoundUp16(size_t n) { return (n + 15) / 16 * 16; }

// Scores from the signal tokens' queries at the scoring layer over document keys (per document block)
// and instruction keys: the authors' normalised scores and the anchored ones (see ScorePrompt).
void ScoreFromKeys(const float* q, size_t n_signal, size_t heads, size_t kv_heads, size_t d,
                   const std::vector<std::pair<const float*, size_t>>& doc_keys, const float* instruction_keys,
                   size_t n_instruction, BlockRankScores* out, bool keep_logits = false) {
  const size_t group = heads / kv_heads, n_docs = doc_keys.size();
  out->doc_scores.assign(n_docs, 0.0);
  if (keep_logits) out->logits.assign(heads, std::vector<std::vector<float>>(n_signal));
  std::vector<double> anchored(n_docs, 0.0);
  std::vector<float> logits, part, anchor;
  for (size_t h = 0; h < heads; ++h) {
    for (size_t t = 0; t < n_signal; ++t) {
      const float* qh = q + (t * heads + h) * d;
      logits.clear();
      for (const auto& [keys, n] : doc_keys) {
        model::AttentionLogits(qh, keys, kv_heads, d, h / group, {{0, n}}, &part);
        logits.insert(logits.end(), part.begin(), part.end());
      }
      model::AttentionLogits(qh, instruction_keys, kv_heads, d, h / group, {{0, n_instruction}}, &anchor);
      if (keep_logits) out->logits[h][t] = logits;
      const double top = *std::max_element(logits.begin(), logits.end());
      double sum = 0;
      for (float v : logits) sum += std::exp(v - top);
      const double anchor_top = *std::max_element(anchor.begin(), anchor.end());
      double anchor_sum = 0;
      for (float v : anchor) anchor_sum += std::exp(v - anchor_top);
      const double anchor_lse = anchor_top + std::log(anchor_sum);
      size_t j = 0;
      for (size_t doc = 0; doc < n_docs; ++doc) {
        double mass = 0, rel = 0;
        for (size_t i = 0; i < doc_keys[doc].second; ++i, ++j) {
          mass += std::exp(logits[j] - top);
          rel += std::exp(logits[j] - anchor_lse);
        }
        out->doc_scores[doc] += mass / sum;
        anchored[doc] += rel;
      }
    }
  }
  const double pairs = static_cast<double>(heads * n_signal);
  for (double& s : out->doc_scores) s /= pairs;
  out->anchored_scores.resize(n_docs);
  for (size_t doc = 0; doc < n_docs; ++doc) out->anchored_scores[doc] = std::log(anchored[doc] / pairs);
}

// Chen et al.'s calibration: the content-free query's scores subtracted from the real query's.
void Calibrate(const BlockRankScores& content_free, BlockRankScores* scores) {
  for (size_t i = 0; i < scores->doc_scores.size(); ++i) {
    scores->doc_scores[i] -= content_free.doc_scores[i];
    scores->anchored_scores[i] -= content_free.anchored_scores[i];
  }
}

}  // namespace

BlockRankPrompt BuildBlockRankPrompt(const model::Tokenizer& tokenizer, const std::string& query,
                                     const std::vector<BlockRankDocument>& docs, const BlockRankOptions& options) {
  BlockRankPrompt p;
  const ChatFrame frame = FrameFor(tokenizer);
  std::string instruction = std::string(frame.open) + kInstruction;
  if (options.query_in_instruction) instruction += "\nQuery: " + query;
  instruction += "\n\nDocuments:";
  p.pieces.push_back(instruction);
  for (size_t k = 0; k < docs.size(); ++k) {
    const std::string content = docs[k].title.empty() ? docs[k].text : docs[k].title + " " + docs[k].text;
    const std::string label = options.query_in_instruction ? std::to_string(k) : docs[k].id;
    p.pieces.push_back("\nID: " + label + " | CONTENT: " + content + " | END ID: " + label);
  }
  p.pieces.push_back(kFinalPrefix + query + kFinalSuffix + frame.close + kAnswerPrefix);
  p.pieces.push_back("[");
  p.calibrated = options.calibrate;
  if (p.calibrated) p.pieces.push_back(std::string(kFinalPrefix) + kContentFreeQuery + kFinalSuffix + frame.close + kAnswerPrefix);
  for (const auto& piece : p.pieces) p.piece_ids.push_back(tokenizer.Encode(piece));

  const size_t h = RoundUp16(options.max_block_length);
  auto truncated = [h](std::vector<int32_t> ids) {
    if (ids.size() > h) ids.resize(h);
    return ids;
  };
  p.blocks.push_back(truncated(p.piece_ids[0]));
  for (size_t k = 0; k < docs.size(); ++k) p.blocks.push_back(truncated(p.piece_ids[1 + k]));
  const auto& bracket = p.piece_ids[docs.size() + 2];
  for (size_t q = docs.size() + 1; q < p.piece_ids.size(); q += 2) {  // the query, then the content-free one
    std::vector<int32_t> query_block = p.piece_ids[q];
    query_block.insert(query_block.end(), bracket.begin(), bracket.end());
    p.blocks.push_back(truncated(std::move(query_block)));
  }

  const int32_t l0 = static_cast<int32_t>(p.blocks[0].size());
  const int32_t query_start = options.query_position > 0 ? options.query_position : l0 + static_cast<int32_t>(h);
  for (size_t b = 0; b < p.blocks.size(); ++b) {
    const int32_t start = b == 0 ? 0 : (b >= p.query_block() ? query_start : l0);
    std::vector<int32_t> pos(p.blocks[b].size());
    for (size_t i = 0; i < pos.size(); ++i) pos[i] = start + static_cast<int32_t>(i);
    p.positions.push_back(std::move(pos));
  }
  return p;
}

model::AttentionMask BlockRankMask(const BlockRankPrompt& prompt) {
  model::AttentionMask mask;
  mask.kind = model::AttentionMask::Kind::kBlocks;
  size_t offset = 0;
  const size_t m = prompt.blocks.size(), query = prompt.query_block();
  for (size_t b = 0; b < m; ++b) {
    mask.block_starts.push_back(offset);
    offset += prompt.blocks[b].size();
    std::vector<size_t> sees;
    if (b >= query) {  // a query block (the real one, or the content-free one) sees all but the other
      for (size_t e = 0; e < query; ++e) sees.push_back(e);
    } else if (b > 0) {
      sees.push_back(0);
    }
    mask.sees.push_back(std::move(sees));
  }
  return mask;
}

Result<std::unique_ptr<BlockRanker>> BlockRanker::Load(const std::string& model_dir, const BlockRankOptions& options) {
  QUARRY_ASSIGN_OR_RETURN(const auto config, model::LoadConfig(model_dir));
  if (options.scoring_layer < 0 || options.scoring_layer >= config.n_layers) {
    return Status::InvalidArgument("blockrank: scoring layer " + std::to_string(options.scoring_layer) +
                                   " outside the model's " + std::to_string(config.n_layers) + " layers");
  }
  // Only the layers up to the scoring layer run, and never the LM head: load nothing else.
  QUARRY_ASSIGN_OR_RETURN(auto model,
                          model::LlamaModel::Load(model_dir, {.n_layers = options.scoring_layer + 1, .head = false,
                                                                     .bf16_activations = options.bf16_activations,
                                                                     .quantized_activations = options.quantized_activations}));
  QUARRY_ASSIGN_OR_RETURN(auto tokenizer, model::LoadTokenizer(model_dir));
  if (options.n_signal < 1) return Status::InvalidArgument("blockrank: n_signal must be at least 1");
  BlockRankOptions adjusted = options;
  // With a sliding window (Gemma 3's local layers) the query block goes right after the document
  // blocks rather than at the default 16384, where it could not see them; prompts must then fit in the
  // window (CheckWindow).
  if (config.sliding_window > 0 && options.query_position == BlockRankOptions{}.query_position) adjusted.query_position = 0;
  return std::make_unique<BlockRanker>(std::move(model), std::move(tokenizer), adjusted);
}

Status BlockRanker::CheckLayers(const std::vector<int>& layers) const {
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i] < 0 || layers[i] > options_.scoring_layer || (i > 0 && layers[i] <= layers[i - 1])) {
      return Status::InvalidArgument("blockrank: scoring layers must ascend within 0.." + std::to_string(options_.scoring_layer) +
                                     " (the layers loaded)");
    }
  }
  if (layers.empty()) return Status::InvalidArgument("blockrank: no scoring layer");
  return Status::Ok();
}

Status BlockRanker::CheckWindow(const BlockRankPrompt& prompt) const {
  const int window = model_->config().sliding_window;
  if (window <= 0) return Status::Ok();
  // Every row sees position 0 (the instruction's first token); the window never hides a key when the
  // largest position is within it. Then the local layers run as the global ones do.
  int32_t last = 0;
  for (const auto& positions : prompt.positions) {
    for (int32_t p : positions) last = std::max(last, p);
  }
  if (last >= window) {
    return Status::InvalidArgument("blockrank: the prompt reaches position " + std::to_string(last) + ", beyond " +
                                   model_->config().model_type + "'s sliding window of " + std::to_string(window) +
                                   " (lower max_block_length, or put the query block earlier with query_position)");
  }
  return Status::Ok();
}

BlockRanker::BlockRanker(std::unique_ptr<model::LlamaModel> model,
                         std::unique_ptr<model::Tokenizer> tokenizer, BlockRankOptions options)
    : model_(std::move(model)), tokenizer_(std::move(tokenizer)), options_(options) {}

Result<BlockRankScores> BlockRanker::ScorePrompt(const BlockRankPrompt& prompt, bool dense_reference) const {
  QUARRY_ASSIGN_OR_RETURN(auto per_layer, ScorePromptAtLayers(prompt, {options_.scoring_layer}, dense_reference));
  return std::move(per_layer[0]);
}

Result<std::vector<BlockRankScores>> BlockRanker::ScorePromptAtLayers(const BlockRankPrompt& prompt,
                                                                      const std::vector<int>& layers,
                                                                      bool dense_reference) const {
  const auto& c = model_->config();
  const size_t m = prompt.blocks.size();
  if (m < (prompt.calibrated ? 4u : 3u)) return Status::InvalidArgument("blockrank: a prompt needs at least one document");
  QUARRY_RETURN_IF_ERROR(CheckLayers(layers));
  std::vector<int32_t> ids, positions;
  for (size_t b = 0; b < m; ++b) {
    ids.insert(ids.end(), prompt.blocks[b].begin(), prompt.blocks[b].end());
    positions.insert(positions.end(), prompt.positions[b].begin(), prompt.positions[b].end());
  }
  for (size_t t = 0; t < ids.size(); ++t) {
    if (ids[t] < 0 || ids[t] >= c.vocab_size) return Status::InvalidArgument("blockrank: token id out of range");
  }
  model::AttentionMask mask = BlockRankMask(prompt);
  mask.dense_reference = dense_reference;
  const size_t n = ids.size(), H = c.hidden_size, d = c.head_dim;
  const size_t heads = c.n_heads, kv_heads = c.n_kv_heads;
  const size_t query = prompt.query_block();
  // The signal tokens: the last n_signal of the query block (and of the content-free block).
  std::vector<std::pair<size_t, size_t>> signals;  // first row, count
  for (size_t b = query; b < m; ++b) {
    const size_t count = std::min<size_t>(options_.n_signal, prompt.blocks[b].size());
    signals.emplace_back(mask.block_starts[b] + prompt.blocks[b].size() - count, count);
  }
  const size_t doc_begin = mask.block_starts[1], doc_end = mask.block_starts[query];

  QUARRY_RETURN_IF_ERROR(CheckWindow(prompt));
  std::vector<BlockRankScores> out;
  std::vector<float> x = model_->Embed(ids), k(doc_end * kv_heads * d), q;
  std::vector<float> lq(n * heads * d), lk(n * kv_heads * d), lv(n * kv_heads * d), attn(n * heads * d);
  std::vector<size_t> rows(n);
  for (size_t i = 0; i < n; ++i) rows[i] = i;
  int ran = 0;
  for (int layer : layers) {
    // The layers below: block-sparse attention over the prompt's positions (a sliding window, when the
    // model has one, hides nothing: CheckWindow).
    for (; ran < layer; ++ran) {
      model_->QueryKeyValue(ran, x.data(), n, positions.data(), lq.data(), lk.data(), lv.data());
      model::Attention(lq.data(), rows, lk.data(), lv.data(), n, heads, kv_heads, d, mask, attn.data());
      model_->FinishLayer(ran, x.data(), n, attn.data());
    }
    // This layer's keys of the instruction and document tokens, queries of the signal tokens only.
    model_->QueryKeyValue(layer, x.data(), doc_end, positions.data(), nullptr, k.data(), nullptr);
    std::vector<std::pair<const float*, size_t>> doc_keys;
    for (size_t b = 1; b < query; ++b) doc_keys.emplace_back(k.data() + mask.block_starts[b] * kv_heads * d, prompt.blocks[b].size());
    std::vector<BlockRankScores> by_query;
    for (const auto& [first, count] : signals) {
      q.resize(count * heads * d);
      model_->QueryKeyValue(layer, x.data() + first * H, count, positions.data() + first, q.data(), nullptr, nullptr);
      by_query.emplace_back();
      ScoreFromKeys(q.data(), count, heads, kv_heads, d, doc_keys, k.data(), doc_begin, &by_query.back(),
                    /*keep_logits=*/by_query.size() == 1);
    }
    if (by_query.size() == 2) Calibrate(by_query[1], &by_query[0]);
    out.push_back(std::move(by_query[0]));
  }
  return out;
}

Result<std::vector<double>> BlockRanker::Score(const std::string& query, const std::vector<BlockRankDocument>& docs) const {
  QUARRY_ASSIGN_OR_RETURN(auto per_layer, ScoreAtLayers(query, docs, {options_.scoring_layer}));
  return std::move(per_layer[0]);
}

Result<std::vector<std::vector<double>>> BlockRanker::ScoreAtLayers(const std::string& query,
                                                                    const std::vector<BlockRankDocument>& docs,
                                                                    const std::vector<int>& layers) const {
  std::vector<std::vector<double>> out(layers.size());
  if (docs.empty()) return out;
  const size_t window = options_.window == 0 ? docs.size() : options_.window;
  for (size_t begin = 0; begin < docs.size(); begin += window) {
    const std::vector<BlockRankDocument> part(docs.begin() + begin, docs.begin() + std::min(docs.size(), begin + window));
    QUARRY_ASSIGN_OR_RETURN(auto scores, ScorePromptAtLayers(BuildBlockRankPrompt(*tokenizer_, query, part, options_), layers));
    for (size_t l = 0; l < layers.size(); ++l) {
      // One pass: the normalised scores; windows: the anchored ones, comparable across passes.
      const auto& s = docs.size() <= window ? scores[l].doc_scores : scores[l].anchored_scores;
      out[l].insert(out[l].end(), s.begin(), s.end());
    }
  }
  return out;
}

}  // namespace quarry

namespace quarry {

BlockCache BlockRanker::RunBlock(const std::vector<int32_t>& ids, const std::vector<int32_t>& positions,
                                 const std::vector<const BlockCache*>& context, const std::vector<int>& hidden_layers,
                                 std::vector<std::vector<float>>* hidden) const {
  const auto& c = model_->config();
  const size_t n = ids.size(), d = c.head_dim;
  const size_t heads = c.n_heads, kv_heads = c.n_kv_heads, q_dim = heads * d, kv_dim = kv_heads * d;
  const int last = hidden ? hidden_layers.back() : options_.scoring_layer;  // layers [0, last) run
  BlockCache cache;
  cache.n_tokens = n;
  std::vector<float> x = model_->Embed(ids), q(n * q_dim), attn(n * q_dim);
  size_t next_hidden = 0;
  for (int l = 0;; ++l) {
    for (; hidden && next_hidden < hidden_layers.size() && hidden_layers[next_hidden] == l; ++next_hidden) {
      hidden->push_back(x);
    }
    if (l == last) break;
    std::vector<float> k(n * kv_dim), v(n * kv_dim);
    model_->QueryKeyValue(l, x.data(), n, positions.data(), q.data(), k.data(), v.data());
    // This block sees every context block fully and itself causally; the caches are read in place.
    std::vector<model::KvSegment> segments;
    for (const BlockCache* ctx : context) segments.push_back({ctx->k[l].data(), ctx->v[l].data(), ctx->n_tokens});
    segments.push_back({k.data(), v.data(), n});
    model::SegmentAttention(q.data(), n, segments, 0, heads, kv_heads, d, attn.data());
    model_->FinishLayer(l, x.data(), n, attn.data());
    if (!hidden) {
      cache.k.push_back(std::move(k));
      cache.v.push_back(std::move(v));
    }
  }
  if (!hidden) {  // the keys at the scoring layer
    std::vector<float> k(n * kv_dim);
    model_->QueryKeyValue(last, x.data(), n, positions.data(), nullptr, k.data(), nullptr);
    cache.k.push_back(std::move(k));
  }
  return cache;
}

Result<std::shared_ptr<const BlockCache>> BlockRanker::InstructionCache() const {
  if (options_.query_in_instruction) {
    return Status::FailedPrecondition("blockrank: caches need the decoupled mode (query_in_instruction = false)");
  }
  std::lock_guard lock(instruction_mu_);
  if (!instruction_cache_) {
    const BlockRankPrompt p = BuildBlockRankPrompt(*tokenizer_, "", {{"", "", ""}}, options_);
    instruction_cache_ = std::make_shared<BlockCache>(RunBlock(p.blocks[0], p.positions[0], {}));
  }
  return instruction_cache_;
}

Result<BlockCache> BlockRanker::EncodeDocument(const BlockRankDocument& doc) const {
  QUARRY_ASSIGN_OR_RETURN(auto instruction, InstructionCache());
  const BlockRankPrompt p = BuildBlockRankPrompt(*tokenizer_, "", {doc}, options_);
  return RunBlock(p.blocks[1], p.positions[1], {instruction.get()});
}

bool BlockRanker::CacheFits(const BlockCache& cache) const {
  const auto& c = model_->config();
  const size_t row = static_cast<size_t>(c.n_kv_heads) * c.head_dim;
  if (cache.k.size() != size_t(options_.scoring_layer) + 1 || cache.v.size() != size_t(options_.scoring_layer)) return false;
  if (cache.n_tokens == 0 || cache.n_tokens > (1u << 20)) return false;
  for (const auto& m : cache.k) {
    if (m.size() != cache.n_tokens * row) return false;
  }
  for (const auto& m : cache.v) {
    if (m.size() != cache.n_tokens * row) return false;
  }
  return true;
}

Result<std::vector<double>> BlockRanker::ScoreCached(const std::string& query,
                                                     const std::vector<const BlockCache*>& docs) const {
  QUARRY_ASSIGN_OR_RETURN(auto per_layer, ScoreCachedAtLayers(query, docs, {options_.scoring_layer}));
  return std::move(per_layer[0]);
}

Result<std::vector<std::vector<double>>> BlockRanker::ScoreCachedAtLayers(const std::string& query,
                                                                          const std::vector<const BlockCache*>& docs,
                                                                          const std::vector<int>& layers) const {
  QUARRY_RETURN_IF_ERROR(CheckLayers(layers));
  std::vector<std::vector<double>> out(layers.size());
  if (docs.empty()) return out;
  for (const BlockCache* doc : docs) {
    if (!CacheFits(*doc)) return Status::InvalidArgument("blockrank: a document cache does not fit this model and options");
  }
  // Windows as ScoreAtLayers cuts them.
  const size_t window = options_.window == 0 ? docs.size() : options_.window;
  for (size_t begin = 0; begin < docs.size(); begin += window) {
    const std::vector<const BlockCache*> part(docs.begin() + begin, docs.begin() + std::min(docs.size(), begin + window));
    QUARRY_ASSIGN_OR_RETURN(auto scores, ScoreCachedPass(query, part, layers));
    for (size_t l = 0; l < layers.size(); ++l) {
      const auto& s = docs.size() <= window ? scores[l].doc_scores : scores[l].anchored_scores;
      out[l].insert(out[l].end(), s.begin(), s.end());
    }
  }
  return out;
}

Result<std::vector<BlockRankScores>> BlockRanker::ScoreCachedPass(const std::string& query,
                                                                  const std::vector<const BlockCache*>& docs,
                                                                  const std::vector<int>& layers) const {
  QUARRY_ASSIGN_OR_RETURN(auto instruction, InstructionCache());
  const auto& c = model_->config();
  const BlockRankPrompt p = BuildBlockRankPrompt(*tokenizer_, query, {{"", "", ""}}, options_);
  QUARRY_RETURN_IF_ERROR(CheckWindow(p));
  std::vector<const BlockCache*> context = {instruction.get()};
  context.insert(context.end(), docs.begin(), docs.end());
  std::vector<std::vector<BlockRankScores>> by_query;  // [the query's, the content-free query's][layer]
  for (size_t b = p.query_block(); b < p.blocks.size(); ++b) {
    const std::vector<int32_t>& ids = p.blocks[b];
    const std::vector<int32_t>& positions = p.positions[b];
    std::vector<std::vector<float>> hidden;
    RunBlock(ids, positions, context, layers, &hidden);
    // The signal tokens' queries at each scoring layer, over that layer's cached keys.
    const size_t H = c.hidden_size, d = c.head_dim, heads = c.n_heads, n = ids.size();
    const size_t n_signal = std::min<size_t>(options_.n_signal, n), first = n - n_signal;
    std::vector<float> q(n_signal * heads * d);
    by_query.emplace_back(layers.size());
    for (size_t l = 0; l < layers.size(); ++l) {
      model_->QueryKeyValue(layers[l], hidden[l].data() + first * H, n_signal, positions.data() + first, q.data(),
                            nullptr, nullptr);
      std::vector<std::pair<const float*, size_t>> doc_keys;
      for (const BlockCache* doc : docs) doc_keys.emplace_back(doc->k[layers[l]].data(), doc->n_tokens);
      ScoreFromKeys(q.data(), n_signal, heads, c.n_kv_heads, d, doc_keys, instruction->k[layers[l]].data(),
                    instruction->n_tokens, &by_query.back()[l]);
    }
  }
  if (by_query.size() == 2) {
    for (size_t l = 0; l < layers.size(); ++l) Calibrate(by_query[1][l], &by_query[0][l]);
  }
  return std::move(by_query[0]);
}

std::string EncodeBlockCache(const BlockCache& cache, CacheDType dtype) {
  std::string out;
  out.push_back(1);  // format version
  out.push_back(static_cast<char>(dtype));
  PutVarint64(&out, cache.n_tokens);
  PutVarint64(&out, cache.k.size());
  PutVarint64(&out, cache.v.size());
  auto put = [&](const std::vector<float>& m) {
    PutVarint64(&out, m.size());
    if (dtype == CacheDType::kF32) {
      out.append(reinterpret_cast<const char*>(m.data()), m.size() * 4);
    } else {
      for (float f : m) {
        const uint16_t h = model::F32ToF16(f);
        out.append(reinterpret_cast<const char*>(&h), 2);
      }
    }
  };
  for (const auto& m : cache.k) put(m);
  for (const auto& m : cache.v) put(m);
  return out;
}

Result<BlockCache> DecodeBlockCache(std::string_view in) {
  auto bad = [] { return Status::Corruption("blockrank cache: truncated or unknown format"); };
  if (in.size() < 2 || in[0] != 1 || (in[1] != 0 && in[1] != 1)) return bad();
  const auto dtype = static_cast<CacheDType>(in[1]);
  in.remove_prefix(2);
  uint64_t n_tokens, n_k, n_v;
  if (!GetVarint64(&in, &n_tokens) || !GetVarint64(&in, &n_k) || !GetVarint64(&in, &n_v)) return bad();
  BlockCache cache;
  cache.n_tokens = n_tokens;
  auto get = [&](std::vector<float>* m) {
    uint64_t size;
    const size_t width = dtype == CacheDType::kF32 ? 4 : 2;
    if (!GetVarint64(&in, &size) || size > in.size() / width) return false;
    m->resize(size);
    if (size == 0) return true;
    if (dtype == CacheDType::kF32) {
      std::memcpy(m->data(), in.data(), size * 4);
    } else {
      for (size_t i = 0; i < size; ++i) {
        uint16_t h;
        std::memcpy(&h, in.data() + 2 * i, 2);
        (*m)[i] = model::F16ToF32(h);
      }
    }
    in.remove_prefix(size * width);
    return true;
  };
  // Each matrix takes at least its one-byte size, which bounds the counts by the bytes left.
  if (n_k > in.size() || n_v > in.size() - n_k) return bad();
  cache.k.resize(n_k);
  cache.v.resize(n_v);
  for (auto& m : cache.k) if (!get(&m)) return bad();
  for (auto& m : cache.v) if (!get(&m)) return bad();
  if (!in.empty()) return bad();
  return cache;
}

}  // namespace quarry
