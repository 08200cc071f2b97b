#include "model/sentence_transformers.h"

#include <filesystem>

#include "common/json.h"

namespace quarry::model {

namespace {

namespace fs = std::filesystem;

Status ReadPooling(const std::string& path, SentenceTransformerConfig* c) {
  QUARRY_ASSIGN_OR_RETURN(const nlohmann::json j, ReadJsonFile(path));
  if (!j.is_object()) return Status::InvalidArgument(path + ": not a JSON object");
  struct Mode {
    const char* field;
    std::optional<PoolingMode> mode;  // nullopt: a mode Quarry does not implement
  };
  const Mode modes[] = {{"pooling_mode_cls_token", PoolingMode::kCls},
                        {"pooling_mode_mean_tokens", PoolingMode::kMean},
                        {"pooling_mode_lasttoken", PoolingMode::kLastToken},
                        {"pooling_mode_max_tokens", std::nullopt},
                        {"pooling_mode_mean_sqrt_len_tokens", std::nullopt},
                        {"pooling_mode_weightedmean_tokens", std::nullopt}};
  int chosen = 0;
  for (const Mode& m : modes) {
    bool on = false;
    QUARRY_RETURN_IF_ERROR(JsonField(j, m.field, &on, false, path));
    if (!on) continue;
    if (!m.mode) return Status::InvalidArgument(path + ": " + m.field + " is not supported (cls, mean or lasttoken)");
    c->pooling = m.mode;
    ++chosen;
  }
  if (chosen > 1) return Status::InvalidArgument(path + ": several pooling modes at once (concatenated) are not supported");
  bool include_prompt = true;
  QUARRY_RETURN_IF_ERROR(JsonField(j, "include_prompt", &include_prompt, false, path));
  if (!include_prompt) return Status::InvalidArgument(path + ": include_prompt false is not supported");
  return Status::Ok();
}

Status ReadPrompts(const std::string& path, SentenceTransformerConfig* c) {
  auto j = ReadJsonFile(path);
  if (j.status().code() == StatusCode::kNotFound) return Status::Ok();
  QUARRY_RETURN_IF_ERROR(j.status());
  if (!j->is_object()) return Status::InvalidArgument(path + ": not a JSON object");
  auto prompts = j->find("prompts");
  if (prompts == j->end() || prompts->is_null()) return Status::Ok();
  if (!prompts->is_object()) return Status::InvalidArgument(path + ": field 'prompts' is not an object");
  std::string prompt;
  const std::string where = path + ": prompts";
  if (prompts->contains("query")) {
    QUARRY_RETURN_IF_ERROR(JsonField(*prompts, "query", &prompt, false, where));
    c->query_prompt = prompt;
  }
  for (const char* name : {"document", "passage"}) {
    if (!prompts->contains(name)) continue;
    QUARRY_RETURN_IF_ERROR(JsonField(*prompts, name, &prompt, false, where));
    c->document_prompt = prompt;
    break;
  }
  return Status::Ok();
}

}  // namespace

Result<SentenceTransformerConfig> LoadSentenceTransformerConfig(const std::string& dir) {
  SentenceTransformerConfig c;
  c.transformer_dir = dir;
  const std::string modules_path = dir + "/modules.json";
  auto modules = ReadJsonFile(modules_path);
  if (modules.status().code() == StatusCode::kNotFound) return c;
  QUARRY_RETURN_IF_ERROR(modules.status());
  if (!modules->is_array()) return Status::InvalidArgument(modules_path + ": not a JSON array");
  c.present = true;
  c.normalize = false;
  bool transformer = false;
  for (size_t i = 0; i < modules->size(); ++i) {
    const nlohmann::json& m = (*modules)[i];
    const std::string where = modules_path + ": module " + std::to_string(i);
    if (!m.is_object()) return Status::InvalidArgument(where + " is not an object");
    std::string type, path;
    QUARRY_RETURN_IF_ERROR(JsonField(m, "type", &type, true, where));
    QUARRY_RETURN_IF_ERROR(JsonField(m, "path", &path, false, where));
    if (fs::path(path).is_absolute() || path.find("..") != std::string::npos) {
      return Status::InvalidArgument(where + ": path '" + path + "' leaves the model directory");
    }
    const std::string module_dir = path.empty() ? dir : dir + "/" + path;
    const std::string kind = type.substr(type.rfind('.') + 1);
    if (kind == "Transformer" && !transformer) {
      c.transformer_dir = module_dir;
      transformer = true;
    } else if (kind == "Pooling" && transformer && !c.pooling) {
      QUARRY_RETURN_IF_ERROR(ReadPooling(module_dir + "/config.json", &c));
    } else if (kind == "Normalize" && c.pooling) {
      c.normalize = true;
    } else {
      return Status::InvalidArgument(where + ": module '" + type +
                                     "' is not supported here (Transformer, Pooling, Normalize, in that order)");
    }
  }
  if (!transformer) return Status::InvalidArgument(modules_path + ": no Transformer module");
  // sentence_bert_config.json lives beside the Transformer's weights.
  const std::string sbert_path = c.transformer_dir + "/sentence_bert_config.json";
  auto sbert = ReadJsonFile(sbert_path);
  if (sbert.ok()) {
    if (!sbert->is_object()) return Status::InvalidArgument(sbert_path + ": not a JSON object");
    int max_seq_length = 0;
    QUARRY_RETURN_IF_ERROR(JsonField(*sbert, "max_seq_length", &max_seq_length, false, sbert_path));
    if (max_seq_length < 0) return Status::InvalidArgument(sbert_path + ": max_seq_length is negative");
    c.max_seq_length = static_cast<size_t>(max_seq_length);
    QUARRY_RETURN_IF_ERROR(JsonField(*sbert, "do_lower_case", &c.lower_case, false, sbert_path));
  } else if (sbert.status().code() != StatusCode::kNotFound) {
    return sbert.status();
  }
  QUARRY_RETURN_IF_ERROR(ReadPrompts(dir + "/config_sentence_transformers.json", &c));
  return c;
}

}  // namespace quarry::model
