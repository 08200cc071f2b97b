#include "model/safetensors.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "model/mapped_file.h"

namespace quarry::model {

namespace fs = std::filesystem;

namespace {

struct DTypeInfo {
  DType dtype;
  const char* name;  // as safetensors spells it
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {{DType::kF32, "F32", 4}, {DType::kF16, "F16", 2},  {DType::kBF16, "BF16", 2},
                                 {DType::kF64, "F64", 8}, {DType::kI64, "I64", 8},  {DType::kI32, "I32", 4},
                                 {DType::kI16, "I16", 2}, {DType::kI8, "I8", 1},    {DType::kU8, "U8", 1},
                                 {DType::kBool, "BOOL", 1}};

}  // namespace

const char* DTypeName(DType d) {
  for (const auto& info : kDTypes) {
    if (info.dtype == d) return info.name;
  }
  return "?";
}

size_t DTypeSize(DType d) {
  for (const auto& info : kDTypes) {
    if (info.dtype == d) return info.size;
  }
  return 0;
}

size_t TensorView::n_elements() const {
  size_t n = 1;
  for (int64_t s : shape) n *= static_cast<size_t>(s);
  return n;
}

float Bf16ToF32(uint16_t v) {
  const uint32_t bits = uint32_t{v} << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t F32ToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffff) > 0x7f800000) return static_cast<uint16_t>((bits >> 16) | 0x40);  // NaN stays NaN
  bits += 0x7fff + ((bits >> 16) & 1);
  return static_cast<uint16_t>(bits >> 16);
}

uint16_t F32ToF16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  const uint32_t abs = bits & 0x7fffffff;
  if (abs > 0x7f800000) return sign | 0x7e00;                   // NaN
  if (abs >= 0x477ff000) return sign | 0x7c00;                   // overflow (>= 65520) to infinity
  if (abs < 0x38800000) {                                        // subnormal half (or zero)
    if (abs < 0x33000000) return sign;                           // below half the smallest subnormal
    const uint32_t mant = (abs & 0x7fffff) | 0x800000;
    const int shift = 126 - static_cast<int>(abs >> 23);         // 14..24
    uint32_t half = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) ++half;
    return sign | static_cast<uint16_t>(half);
  }
  uint32_t half = ((abs >> 13) - (112u << 10));                  // rebias exponent 127 -> 15
  const uint32_t rem = abs & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) ++half;     // round to nearest even
  return sign | static_cast<uint16_t>(half);
}

float F16ToF32(uint16_t h) {
  const uint32_t sign = uint32_t{h & 0x8000u} << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) mant <<= 1, --exp;
      bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}


Checkpoint::~Checkpoint() = default;

uint64_t Checkpoint::mapped_bytes() const {
  uint64_t n = 0;
  for (const auto& f : files_) n += f->size();
  return n;
}

Status Checkpoint::AddFile(const std::string& path) {
  QUARRY_ASSIGN_OR_RETURN(auto file, MappedFile::Open(path));
  auto bad = [&](const std::string& what) { return Status::Corruption(path + ": " + what); };
  if (file->size() < 8) return bad("truncated: no safetensors header length");
  uint64_t header_len;
  std::memcpy(&header_len, file->data(), 8);  // little-endian on every platform Quarry builds for
  if (header_len > file->size() - 8 || header_len > (100u << 20)) {
    return bad("header length " + std::to_string(header_len) + " exceeds the file");
  }
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(file->data() + 8, file->data() + 8 + header_len);
  } catch (const nlohmann::json::exception& e) {
    return bad(std::string("corrupt safetensors header: ") + e.what());
  }
  if (!header.is_object()) return bad("safetensors header is not a JSON object");
  const size_t data_start = 8 + header_len;
  const size_t data_size = file->size() - data_start;
  for (const auto& item : header.items()) {
    const std::string& name = item.key();
    const nlohmann::json& info = item.value();
    if (name == "__metadata__") continue;
    auto tensor_bad = [&](const std::string& what) { return bad("tensor '" + name + "': " + what); };
    TensorView t;
    t.name = name;
    t.file = path;
    try {
      const std::string dtype = info.at("dtype");
      const DTypeInfo* known = nullptr;
      for (const auto& d : kDTypes) {
        if (dtype == d.name) known = &d;
      }
      if (!known) return tensor_bad("unsupported dtype " + dtype);
      t.dtype = known->dtype;
      t.shape = info.at("shape").get<std::vector<int64_t>>();
      const auto offsets = info.at("data_offsets").get<std::vector<uint64_t>>();
      if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > data_size) {
        return tensor_bad("byte range outside the file (truncated?)");
      }
      size_t bytes = DTypeSize(t.dtype);
      for (int64_t s : t.shape) {
        if (s < 0) return tensor_bad("negative dimension");
        if (__builtin_mul_overflow(bytes, static_cast<size_t>(s), &bytes)) return tensor_bad("shape too large");
      }
      if (offsets[1] - offsets[0] != bytes) {
        return tensor_bad("byte range does not match shape and dtype");
      }
      t.data = file->data() + data_start + offsets[0];
    } catch (const nlohmann::json::exception& e) {
      return tensor_bad(std::string("malformed entry: ") + e.what());
    }
    if (tensors_.count(name)) return tensor_bad("defined twice");
    tensors_.emplace(name, std::move(t));
  }
  files_.push_back(std::move(file));
  return Status::Ok();
}

Result<std::unique_ptr<Checkpoint>> Checkpoint::Open(const std::string& dir) {
  std::unique_ptr<Checkpoint> c(new Checkpoint());
  const fs::path single = fs::path(dir) / "model.safetensors";
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  if (fs::exists(single)) {
    QUARRY_RETURN_IF_ERROR(c->AddFile(single.string()));
  } else if (fs::exists(index)) {
    std::ifstream in(index);
    std::set<std::string> shards;
    try {
      auto j = nlohmann::json::parse(in);
      for (auto& [name, file] : j.at("weight_map").items()) shards.insert(file.get<std::string>());
    } catch (const nlohmann::json::exception& e) {
      return Status::Corruption(index.string() + ": " + e.what());
    }
    for (const auto& shard : shards) QUARRY_RETURN_IF_ERROR(c->AddFile((fs::path(dir) / shard).string()));
  } else {
    return Status::NotFound(dir + ": no model.safetensors or model.safetensors.index.json");
  }
  return c;
}

Result<const TensorView*> Checkpoint::Get(const std::string& name, const std::vector<int64_t>& shape) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) return Status::NotFound("checkpoint has no tensor '" + name + "'");
  if (it->second.shape != shape) {
    auto str = [](const std::vector<int64_t>& s) {
      std::string out = "[";
      for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
      return out + "]";
    };
    return Status::InvalidArgument(it->second.file + ": tensor '" + name + "' has shape " + str(it->second.shape) +
                                   ", expected " + str(shape));
  }
  return &it->second;
}

Result<std::vector<float>> Checkpoint::GetF32(const std::string& name, const std::vector<int64_t>& shape) const {
  QUARRY_ASSIGN_OR_RETURN(const TensorView* t, Get(name, shape));
  std::vector<float> out(t->n_elements());
  const auto* p = static_cast<const uint8_t*>(t->data);
  switch (t->dtype) {
    case DType::kF32: std::memcpy(out.data(), p, out.size() * 4); break;
    case DType::kBF16:
    case DType::kF16: {
      float (*widen)(uint16_t) = t->dtype == DType::kBF16 ? Bf16ToF32 : F16ToF32;
      for (size_t i = 0; i < out.size(); ++i) {
        uint16_t v;
        std::memcpy(&v, p + 2 * i, 2);
        out[i] = widen(v);
      }
      break;
    }
    default:
      return Status::InvalidArgument(t->file + ": tensor '" + name + "' has dtype " + DTypeName(t->dtype) +
                                     "; weights must be F32, F16 or BF16");
  }
  return out;
}

Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    header[t.name] = {{"dtype", DTypeName(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8) h.push_back(' ');
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = h.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out.write(h.data(), static_cast<std::streamsize>(h.size()));
  for (const auto& t : tensors) out.write(reinterpret_cast<const char*>(t.bytes.data()), static_cast<std::streamsize>(t.bytes.size()));
  if (!out) return Status::IOError(path + ": write failed");
  return Status::Ok();
}

}  // namespace quarry::model
