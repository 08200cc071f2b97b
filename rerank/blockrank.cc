#include "rerank/blockrank.h"

#include <algorithm>
#include <cmath>

#include "model/kernels.h"

namespace quarry {

namespace {

constexpr char kInstruction[] =
    "<s>[INST] You will be given a query and a list of documents. Each document will be formatted as ID: <id> | "
    "CONTENT: <content> | END ID: <id>. You need to read carefully and understand all of them and your goal is to "
    "find all document(s) from the list that can help answer the query.";
constexpr char kFinalPrefix[] = "\n\n====== Now let's start! ======\nWhich document is most relevant to answer the "
                                "query? Print out the ID of the document.\nQuery: ";
constexpr char kFinalSuffix[] = "\nThe following document(s) can help answer the query:[/INST] Final Answer: ";

size_t RoundUp16(size_t n) { return (n + 15) / 16 * 16; }

}  // namespace

BlockRankPrompt BuildBlockRankPrompt(const model::SentencePieceTokenizer& tokenizer, const std::string& query,
                                     const std::vector<BlockRankDocument>& docs, const BlockRankOptions& options) {
  BlockRankPrompt p;
  std::string instruction = kInstruction;
  if (options.query_in_instruction) instruction += "\nQuery: " + query;
  instruction += "\n\nDocuments:";
  p.pieces.push_back(instruction);
  for (size_t k = 0; k < docs.size(); ++k) {
    const std::string content = docs[k].title.empty() ? docs[k].text : docs[k].title + " " + docs[k].text;
    p.pieces.push_back("\nID: " + std::to_string(k) + " | CONTENT: " + content + " | END ID: " + std::to_string(k));
  }
  p.pieces.push_back(kFinalPrefix + query + kFinalSuffix);
  p.pieces.push_back("[");
  for (const auto& piece : p.pieces) p.piece_ids.push_back(tokenizer.Encode(piece));

  const size_t h = RoundUp16(options.max_block_length);
  auto truncated = [h](std::vector<int32_t> ids) {
    if (ids.size() > h) ids.resize(h);
    return ids;
  };
  p.blocks.push_back(truncated(p.piece_ids[0]));
  for (size_t k = 0; k < docs.size(); ++k) p.blocks.push_back(truncated(p.piece_ids[1 + k]));
  std::vector<int32_t> query_block = p.piece_ids[docs.size() + 1];
  const auto& bracket = p.piece_ids.back();
  query_block.insert(query_block.end(), bracket.begin(), bracket.end());
  p.blocks.push_back(truncated(std::move(query_block)));

  const int32_t l0 = static_cast<int32_t>(p.blocks[0].size());
  for (size_t b = 0; b < p.blocks.size(); ++b) {
    const int32_t start = b == 0 ? 0 : (b + 1 == p.blocks.size() ? options.query_position : l0);
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
  const size_t m = prompt.blocks.size();
  for (size_t b = 0; b < m; ++b) {
    mask.block_starts.push_back(offset);
    offset += prompt.blocks[b].size();
    std::vector<size_t> sees;
    if (b + 1 == m) {
      for (size_t e = 0; e < b; ++e) sees.push_back(e);
    } else if (b > 0) {
      sees.push_back(0);
    }
    mask.sees.push_back(std::move(sees));
  }
  return mask;
}

Result<std::unique_ptr<BlockRanker>> BlockRanker::Load(const std::string& model_dir, const BlockRankOptions& options) {
  QUARRY_ASSIGN_OR_RETURN(auto model, model::LlamaModel::Load(model_dir));
  QUARRY_ASSIGN_OR_RETURN(auto tokenizer, model::SentencePieceTokenizer::Load(model_dir));
  if (options.scoring_layer < 0 || options.scoring_layer >= model->config().n_layers) {
    return Status::InvalidArgument("blockrank: scoring layer " + std::to_string(options.scoring_layer) +
                                   " outside the model's " + std::to_string(model->config().n_layers) + " layers");
  }
  if (options.n_signal < 1) return Status::InvalidArgument("blockrank: n_signal must be at least 1");
  return std::make_unique<BlockRanker>(std::move(model), std::move(tokenizer), options);
}

BlockRanker::BlockRanker(std::unique_ptr<model::LlamaModel> model,
                         std::unique_ptr<model::SentencePieceTokenizer> tokenizer, BlockRankOptions options)
    : model_(std::move(model)), tokenizer_(std::move(tokenizer)), options_(options) {}

Result<BlockRankScores> BlockRanker::ScorePrompt(const BlockRankPrompt& prompt, bool dense_reference) const {
  const auto& c = model_->config();
  const size_t m = prompt.blocks.size();
  if (m < 3) return Status::InvalidArgument("blockrank: a prompt needs at least one document");
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
  const size_t heads = c.n_heads, kv_heads = c.n_kv_heads, group = heads / kv_heads;
  const size_t n_query = prompt.blocks.back().size();
  const size_t n_signal = std::min<size_t>(options_.n_signal, n_query);

  std::vector<float> x = model_->Embed(ids);
  for (int l = 0; l < options_.scoring_layer; ++l) model_->RunLayer(l, &x, positions, mask);

  // The scoring layer: keys of the instruction and document tokens, queries of the signal tokens only.
  const auto& L = model_->layer(options_.scoring_layer);
  const size_t doc_begin = mask.block_starts[1], doc_end = mask.block_starts[m - 1];
  std::vector<float> normed(n * H);
  model::RmsNorm(x.data(), n, H, L.attn_norm.data, c.norm_eps, normed.data());
  std::vector<float> k(doc_end * kv_heads * d);
  model::Linear(normed.data(), doc_end, H, L.wk.data, kv_heads * d, nullptr, k.data());
  model::ApplyRope(k.data(), doc_end, kv_heads, d, positions.data(), model_->rope_inv_freq());
  std::vector<float> q(n_signal * heads * d);
  const size_t first_signal = n - n_signal;
  model::Linear(normed.data() + first_signal * H, n_signal, H, L.wq.data, heads * d, nullptr, q.data());
  model::ApplyRope(q.data(), n_signal, heads, d, positions.data() + first_signal, model_->rope_inv_freq());

  BlockRankScores out;
  const size_t n_docs = m - 2;
  out.doc_scores.assign(n_docs, 0.0);
  std::vector<double> anchored(n_docs, 0.0);
  out.logits.assign(heads, std::vector<std::vector<float>>(n_signal));
  std::vector<float> instruction_logits;
  for (size_t h = 0; h < heads; ++h) {
    for (size_t t = 0; t < n_signal; ++t) {
      const float* qh = q.data() + (t * heads + h) * d;
      model::AttentionLogits(qh, k.data(), kv_heads, d, h / group, {{doc_begin, doc_end}}, &out.logits[h][t]);
      model::AttentionLogits(qh, k.data(), kv_heads, d, h / group, {{0, doc_begin}}, &instruction_logits);
      const auto& logits = out.logits[h][t];
      const double top = *std::max_element(logits.begin(), logits.end());
      double sum = 0;
      for (float v : logits) sum += std::exp(v - top);
      const double anchor_top = *std::max_element(instruction_logits.begin(), instruction_logits.end());
      double anchor_sum = 0;
      for (float v : instruction_logits) anchor_sum += std::exp(v - anchor_top);
      const double anchor_lse = anchor_top + std::log(anchor_sum);
      size_t j = 0;
      for (size_t doc = 0; doc < n_docs; ++doc) {
        double mass = 0, rel = 0;
        for (size_t i = 0; i < prompt.blocks[doc + 1].size(); ++i, ++j) {
          mass += std::exp(logits[j] - top);
          rel += std::exp(logits[j] - anchor_lse);
        }
        out.doc_scores[doc] += mass / sum;
        anchored[doc] += rel;
      }
    }
  }
  const double pairs = static_cast<double>(heads * n_signal);
  for (double& s : out.doc_scores) s /= pairs;
  out.anchored_scores.resize(n_docs);
  for (size_t doc = 0; doc < n_docs; ++doc) out.anchored_scores[doc] = std::log(anchored[doc] / pairs);
  return out;
}

Result<std::vector<double>> BlockRanker::Score(const std::string& query, const std::vector<BlockRankDocument>& docs) const {
  if (docs.empty()) return std::vector<double>{};
  const size_t window = options_.window == 0 ? docs.size() : options_.window;
  if (docs.size() <= window) {
    QUARRY_ASSIGN_OR_RETURN(auto scores, ScorePrompt(BuildBlockRankPrompt(*tokenizer_, query, docs, options_)));
    return std::move(scores.doc_scores);
  }
  std::vector<double> out;
  for (size_t begin = 0; begin < docs.size(); begin += window) {
    const std::vector<BlockRankDocument> part(docs.begin() + begin, docs.begin() + std::min(docs.size(), begin + window));
    QUARRY_ASSIGN_OR_RETURN(auto scores, ScorePrompt(BuildBlockRankPrompt(*tokenizer_, query, part, options_)));
    out.insert(out.end(), scores.anchored_scores.begin(), scores.anchored_scores.end());
  }
  return out;
}

}  // namespace quarry
