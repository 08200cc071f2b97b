#include "model/sp_tokenizer.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/coding.h"

namespace quarry::model {

namespace fs = std::filesystem;

namespace {

// Calls fn(field, wire type, payload of a length-delimited field, the field's whole bytes) for each
// field of the serialized protobuf message `in`; the first error (of the walk or of fn) stops it.
Status WalkFields(std::string_view in,
                  const std::function<Status(uint32_t, uint32_t, std::string_view, std::string_view)>& fn) {
  while (!in.empty()) {
    uint64_t tag;
    const std::string_view before = in;
    if (!GetVarint64(&in, &tag)) return Status::Corruption("tokenizer model: bad protobuf tag");
    const uint32_t field = static_cast<uint32_t>(tag >> 3), wire = tag & 7;
    std::string_view payload;
    uint64_t scratch;
    switch (wire) {
      case 0:
        if (!GetVarint64(&in, &scratch)) return Status::Corruption("tokenizer model: bad varint");
        break;
      case 1:
        if (in.size() < 8) return Status::Corruption("tokenizer model: truncated");
        in.remove_prefix(8);
        break;
      case 5:
        if (in.size() < 4) return Status::Corruption("tokenizer model: truncated");
        in.remove_prefix(4);
        break;
      case 2:
        if (!GetLengthPrefixed(&in, &payload)) return Status::Corruption("tokenizer model: truncated field");
        break;
      default:
        return Status::Corruption("tokenizer model: unknown wire type");
    }
    QUARRY_RETURN_IF_ERROR(fn(field, wire, payload, before.substr(0, before.size() - in.size())));
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> WithoutDummyPrefix(const std::string& proto) {
  std::string out;
  bool found = false;
  QUARRY_RETURN_IF_ERROR(WalkFields(proto, [&](uint32_t field, uint32_t wire, std::string_view payload,
                                               std::string_view raw) {
    if (field == 3 && wire == 2) {  // ModelProto.normalizer_spec
      std::string spec(payload);
      spec.push_back(static_cast<char>((3 << 3) | 0));  // NormalizerSpec.add_dummy_prefix (field 3, varint)
      spec.push_back(0);
      PutVarint64(&out, (uint64_t{3} << 3) | 2);
      PutLengthPrefixed(&out, spec);
      found = true;
    } else {
      out.append(raw);
    }
    return Status::Ok();
  }));
  if (!found) return Status::Corruption("tokenizer model: no normalizer_spec");
  return out;
}

namespace {

// Every ModelProto piece has a non-empty text without NUL bytes.
Status CheckPieces(const std::string& proto) {
  size_t index = 0;
  return WalkFields(proto, [&](uint32_t field, uint32_t wire, std::string_view payload, std::string_view) {
    if (field != 1 || wire != 2) return Status::Ok();  // ModelProto.pieces
    const size_t i = index++;
    bool has_piece = false;
    QUARRY_RETURN_IF_ERROR(WalkFields(payload, [&](uint32_t f, uint32_t w, std::string_view text, std::string_view) {
      if (f != 1 || w != 2) return Status::Ok();  // SentencePiece.piece
      has_piece = true;
      if (text.empty() || text.find('\0') != std::string_view::npos) {
        return Status::Corruption("tokenizer model: piece " + std::to_string(i) + " is empty or holds a NUL byte");
      }
      return Status::Ok();
    }));
    return has_piece ? Status::Ok() : Status::Corruption("tokenizer model: piece " + std::to_string(i) + " has no text");
  });
}

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer() = default;
SentencePieceTokenizer::~SentencePieceTokenizer() = default;

Result<std::unique_ptr<SentencePieceTokenizer>> SentencePieceTokenizer::Load(const std::string& path,
                                                                             std::optional<bool> legacy) {
  const bool is_dir = fs::is_directory(path);
  const std::string model_path = is_dir ? path + "/tokenizer.model" : path;
  std::ifstream in(model_path, std::ios::binary);
  if (!in) return Status::NotFound(model_path + ": cannot open tokenizer model");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string proto = ss.str();
  // libsentencepiece builds a trie of the pieces as C strings and aborts the process (an exception
  // through code that cannot pass it) on an empty one, so such pieces are refused here first.
  if (Status s = CheckPieces(proto); !s.ok()) return s.WithContext(model_path);
  std::unique_ptr<SentencePieceTokenizer> t(new SentencePieceTokenizer());
  t->with_prefix_ = std::make_unique<sentencepiece::SentencePieceProcessor>();
  t->without_prefix_ = std::make_unique<sentencepiece::SentencePieceProcessor>();
  if (auto s = t->with_prefix_->LoadFromSerializedProto(proto); !s.ok()) {
    return Status::Corruption(model_path + ": " + s.ToString());
  }
  auto stripped = WithoutDummyPrefix(proto);
  if (!stripped.ok()) return stripped.status().WithContext(model_path);
  if (auto s = t->without_prefix_->LoadFromSerializedProto(*stripped); !s.ok()) {
    return Status::Corruption(model_path + ": " + s.ToString());
  }
  const auto& sp = *t->with_prefix_;
  for (int id = 0; id < sp.GetPieceSize(); ++id) {
    if (!(sp.IsControl(id) || sp.IsUnknown(id))) continue;
    const std::string piece = sp.IdToPiece(id);
    if (!piece.empty()) t->specials_[static_cast<uint8_t>(piece[0])].emplace_back(piece, id);
  }
  for (auto& list : t->specials_) {
    std::stable_sort(list.begin(), list.end(), [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  }
  t->legacy_ = true;
  const std::string config_path = (is_dir ? fs::path(path) : fs::path(path).parent_path()) / "tokenizer_config.json";
  if (fs::exists(config_path)) {
    std::ifstream cin(config_path);
    try {
      auto j = nlohmann::json::parse(cin);
      if (j.contains("legacy") && j["legacy"].is_boolean()) t->legacy_ = j["legacy"].get<bool>();
    } catch (const nlohmann::json::exception& e) {
      return Status::InvalidArgument(config_path + ": " + e.what());
    }
  }
  if (legacy) t->legacy_ = *legacy;
  return t;
}

void SentencePieceTokenizer::EncodeSegment(std::string_view segment, bool prefix, std::vector<int32_t>* ids) const {
  std::vector<int> piece_ids;
  (prefix ? with_prefix_ : without_prefix_)->Encode(segment, &piece_ids).IgnoreError();
  ids->insert(ids->end(), piece_ids.begin(), piece_ids.end());
}

std::vector<int32_t> SentencePieceTokenizer::Encode(std::string_view text) const {
  std::vector<int32_t> ids;
  size_t segment_start = 0, i = 0;
  auto flush = [&](size_t end) {
    if (end > segment_start) {
      const std::string_view segment = text.substr(segment_start, end - segment_start);
      const bool prefix = legacy_ || (segment_start == 0 && segment.front() != ' ');
      EncodeSegment(segment, prefix, &ids);
    }
  };
  while (i < text.size()) {
    const auto& candidates = specials_[static_cast<uint8_t>(text[i])];
    const auto match = std::find_if(candidates.begin(), candidates.end(),
                                    [&](const auto& s) { return text.substr(i, s.first.size()) == s.first; });
    if (match == candidates.end()) {
      ++i;
      continue;
    }
    flush(i);
    ids.push_back(match->second);
    i += match->first.size();
    segment_start = i;
  }
  flush(text.size());
  return ids;
}

std::vector<int32_t> SentencePieceTokenizer::EncodePlain(std::string_view text) const {
  std::vector<int32_t> ids;
  EncodeSegment(text, true, &ids);
  return ids;
}

std::string SentencePieceTokenizer::Decode(const std::vector<int32_t>& ids) const {
  std::string out;
  with_prefix_->Decode(std::vector<int>(ids.begin(), ids.end()), &out).IgnoreError();
  return out;
}

int32_t SentencePieceTokenizer::bos_id() const { return with_prefix_->bos_id(); }
int32_t SentencePieceTokenizer::eos_id() const { return with_prefix_->eos_id(); }
int32_t SentencePieceTokenizer::vocab_size() const { return with_prefix_->GetPieceSize(); }
int32_t SentencePieceTokenizer::PieceToId(std::string_view piece) const {
  const int id = with_prefix_->PieceToId(piece);
  return with_prefix_->IdToPiece(id) == piece ? id : -1;
}

}  // namespace quarry::model
