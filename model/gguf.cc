#include "model/gguf.h"

#include <cstring>
#include <fstream>
#include <limits>

#include "model/mapped_file.h"
#include "model/safetensors.h"  // F16ToF32, Bf16ToF32

namespace quarry::model {

namespace {

constexpr int64_t kQK = 32;    // elements per block of the legacy quants
constexpr int64_t kQK_K = 256;  // elements per K-quant super-block

// GGUF metadata value types.
enum : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32v = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};

const char* ValueTypeName(uint32_t t) {
  static const char* names[] = {"uint8", "int8",  "uint16", "int16",  "uint32", "int32", "float32",
                                "bool",  "string", "array", "uint64", "int64",  "float64"};
  return t <= kF64 ? names[t] : "unknown";
}

// Bounds-checked little-endian reads over the mapped header.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size, const std::string& path) : data_(data), size_(size), path_(path) {}
  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }
  template <typename T>
  Status Read(T* out, const char* what) {
    if (remaining() < sizeof(T)) return Truncated(what);
    std::memcpy(out, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::Ok();
  }
  Status ReadString(std::string* out, const char* what) {
    uint64_t n = 0;
    QUARRY_RETURN_IF_ERROR(Read(&n, what));
    if (n > remaining()) return Truncated(what);
    out->assign(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return Status::Ok();
  }
  Status Corrupt(const std::string& message) const { return Status::Corruption(path_ + ": " + message); }
  Status Truncated(const std::string& what) const {
    return Status::Corruption(path_ + ": truncated at byte " + std::to_string(pos_) + " while reading " + what);
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& path_;
};

size_t ScalarSize(uint32_t t) {
  switch (t) {
    case kU8: case kI8: case kBool: return 1;
    case kU16: case kI16: return 2;
    case kU32: case kI32: case kF32v: return 4;
    case kU64: case kI64: case kF64: return 8;
    default: return 0;
  }
}

Status ReadScalar(Reader* r, uint32_t t, GgufValue* v, const char* what) {
  v->type = t;
  switch (t) {
    case kU8: { uint8_t x = 0; QUARRY_RETURN_IF_ERROR(r->Read(&x, what)); v->kind = GgufValue::Kind::kUint; v->u = x; break; }
    case kU16: { uint16_t x = 0; QUARRY_RETURN_IF_ERROR(r->Read(&x, what)); v->kind = GgufValue::Kind::kUint; v->u = x; break; }
    case kU32: { uint32_t x = 0; QUARRY_RETURN_IF_ERROR(r->Read(&x, what)); v->kind = GgufValue::Kind::kUint; v->u = x; break; }
    case kU64: { uint64_t x = 0; QUARRY_RETURN_IF_ERROR(r->Read(&x, what)); v->kind = GgufValue::Kind::kUint; v->u = x; break; }
    case kI8: { int8_t x = 0; QUARRY_RETURN_IF_ERROR(r->Read(&x, what)); v->kind = GgufValue::Kind::kInt; v->i = x; break; }
    case kI16: { int16_t x = 0; QUARRY_RETURN_IF_ERROR(r->Read(&x, what)); v->kind = GgufValue::Kind::kInt; v->i = x; break; }
    case kI32: { int32_t x = 0; QUARRY_RETURN_IF_ERROR(r->Read(&x, what)); v->kind = GgufValue::Kind::kInt; v->i = x; break; }
    case kI64: { int64_t x = 0; QUARRY_RETURN_IF_ERROR(r->Read(&x, what)); v->kind = GgufValue::Kind::kInt; v->i = x; break; }
    case kF32v: { float x = 0; QUARRY_RETURN_IF_ERROR(r->Read(&x, what)); v->kind = GgufValue::Kind::kFloat; v->f = x; break; }
    case kF64: { double x = 0; QUARRY_RETURN_IF_ERROR(r->Read(&x, what)); v->kind = GgufValue::Kind::kFloat; v->f = x; break; }
    case kBool: {
      uint8_t x = 0;
      QUARRY_RETURN_IF_ERROR(r->Read(&x, what));
      if (x > 1) return r->Corrupt(std::string(what) + ": a bool holds " + std::to_string(x));
      v->kind = GgufValue::Kind::kBool;
      v->b = x != 0;
      break;
    }
    case kString: v->kind = GgufValue::Kind::kString; return r->ReadString(&v->s, what);
    default: return r->Corrupt(std::string(what) + ": unknown value type " + std::to_string(t));
  }
  return Status::Ok();
}

Status ReadValue(Reader* r, uint32_t t, GgufValue* v, const char* what) {
  if (t != kArray) return ReadScalar(r, t, v, what);
  uint32_t et = 0;
  uint64_t n = 0;
  QUARRY_RETURN_IF_ERROR(r->Read(&et, what));
  QUARRY_RETURN_IF_ERROR(r->Read(&n, what));
  if (et == kArray) return r->Corrupt(std::string(what) + ": arrays of arrays are not supported");
  const size_t min_size = et == kString ? sizeof(uint64_t) : ScalarSize(et);
  if (min_size == 0) return r->Corrupt(std::string(what) + ": unknown array element type " + std::to_string(et));
  if (n > r->remaining() / min_size) return r->Truncated(what);
  v->kind = GgufValue::Kind::kArray;
  v->type = et;
  v->array_size = n;
  GgufValue e;
  for (uint64_t k = 0; k < n; ++k) {
    QUARRY_RETURN_IF_ERROR(ReadScalar(r, et, &e, what));
    switch (e.kind) {
      case GgufValue::Kind::kString: v->strings.push_back(std::move(e.s)); break;
      case GgufValue::Kind::kFloat: v->floats.push_back(e.f); break;
      case GgufValue::Kind::kBool: v->ints.push_back(e.b); break;
      case GgufValue::Kind::kUint:
        if (e.u > uint64_t(std::numeric_limits<int64_t>::max())) {
          return r->Corrupt(std::string(what) + ": element " + std::to_string(k) + " exceeds int64");
        }
        v->ints.push_back(static_cast<int64_t>(e.u));
        break;
      default: v->ints.push_back(e.i); break;
    }
  }
  return Status::Ok();
}

}  // namespace

float F16At(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return F16ToF32(h);
}

void ScaleMinK4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

std::string GgmlTypeName(uint32_t type) {
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::kF32: return "F32";
    case GgmlType::kF16: return "F16";
    case GgmlType::kBF16: return "BF16";
    case GgmlType::kQ4_0: return "Q4_0";
    case GgmlType::kQ4_1: return "Q4_1";
    case GgmlType::kQ5_0: return "Q5_0";
    case GgmlType::kQ5_1: return "Q5_1";
    case GgmlType::kQ8_0: return "Q8_0";
    case GgmlType::kQ8_1: return "Q8_1";
    case GgmlType::kQ2_K: return "Q2_K";
    case GgmlType::kQ3_K: return "Q3_K";
    case GgmlType::kQ4_K: return "Q4_K";
    case GgmlType::kQ5_K: return "Q5_K";
    case GgmlType::kQ6_K: return "Q6_K";
    case GgmlType::kQ8_K: return "Q8_K";
  }
  return "type " + std::to_string(type);
}

GgmlBlock GgmlBlockOf(uint32_t type) {
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::kF32: return {1, 4};
    case GgmlType::kF16: return {1, 2};
    case GgmlType::kBF16: return {1, 2};
    case GgmlType::kQ4_0: return {kQK, 2 + kQK / 2};
    case GgmlType::kQ4_1: return {kQK, 4 + kQK / 2};
    case GgmlType::kQ5_0: return {kQK, 2 + 4 + kQK / 2};
    case GgmlType::kQ5_1: return {kQK, 4 + 4 + kQK / 2};
    case GgmlType::kQ8_0: return {kQK, 2 + kQK};
    case GgmlType::kQ8_1: return {kQK, 4 + kQK};
    case GgmlType::kQ2_K: return {kQK_K, kQK_K / 16 + kQK_K / 4 + 4};
    case GgmlType::kQ3_K: return {kQK_K, kQK_K / 8 + kQK_K / 4 + 12 + 2};
    case GgmlType::kQ4_K: return {kQK_K, 4 + 12 + kQK_K / 2};
    case GgmlType::kQ5_K: return {kQK_K, 4 + 12 + kQK_K / 8 + kQK_K / 2};
    case GgmlType::kQ6_K: return {kQK_K, kQK_K / 2 + kQK_K / 4 + kQK_K / 16 + 2};
    case GgmlType::kQ8_K: return {kQK_K, 4 + kQK_K + kQK_K / 16 * 2};
  }
  return {};
}

bool DequantizeRow(uint32_t type, const uint8_t* x, float* y, int64_t n) {
  const GgmlBlock blk = GgmlBlockOf(type);
  if (blk.elements == 0 || n % blk.elements != 0) return false;
  const int64_t nb = n / blk.elements;
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::kF32:
      std::memcpy(y, x, n * sizeof(float));
      return true;
    case GgmlType::kF16:
    case GgmlType::kBF16: {
      float (*widen)(uint16_t) = type == uint32_t(GgmlType::kF16) ? F16ToF32 : Bf16ToF32;
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, x + 2 * i, 2);
        y[i] = widen(h);
      }
      return true;
    }
    case GgmlType::kQ4_0:
    case GgmlType::kQ4_1:
      for (int64_t i = 0; i < nb; ++i, x += blk.bytes, y += kQK) {
        const bool has_min = type == uint32_t(GgmlType::kQ4_1);
        const float d = F16At(x), m = has_min ? F16At(x + 2) : 0.0f;
        const int offset = has_min ? 0 : 8;
        const uint8_t* qs = x + (has_min ? 4 : 2);
        for (int j = 0; j < kQK / 2; ++j) {
          y[j] = ((qs[j] & 0x0F) - offset) * d + m;
          y[j + kQK / 2] = ((qs[j] >> 4) - offset) * d + m;
        }
      }
      return true;
    case GgmlType::kQ5_0:
    case GgmlType::kQ5_1:
      for (int64_t i = 0; i < nb; ++i, x += blk.bytes, y += kQK) {
        const bool has_min = type == uint32_t(GgmlType::kQ5_1);
        const float d = F16At(x), m = has_min ? F16At(x + 2) : 0.0f;
        const int offset = has_min ? 0 : 16;
        uint32_t qh;
        std::memcpy(&qh, x + (has_min ? 4 : 2), 4);
        const uint8_t* qs = x + (has_min ? 8 : 6);
        for (int j = 0; j < kQK / 2; ++j) {
          const int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
          y[j] = (((qs[j] & 0x0F) | h0) - offset) * d + m;
          y[j + kQK / 2] = (((qs[j] >> 4) | h1) - offset) * d + m;
        }
      }
      return true;
    case GgmlType::kQ8_0:
      for (int64_t i = 0; i < nb; ++i, x += blk.bytes, y += kQK) {
        const float d = F16At(x);
        const int8_t* qs = reinterpret_cast<const int8_t*>(x + 2);
        for (int j = 0; j < kQK; ++j) y[j] = qs[j] * d;
      }
      return true;
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
      for (int64_t i = 0; i < nb; ++i, x += blk.bytes) {
        const bool five = type == uint32_t(GgmlType::kQ5_K);
        const float d = F16At(x), dmin = F16At(x + 2);
        const uint8_t* scales = x + 4;
        const uint8_t* qh = x + 16;                       // Q5_K only
        const uint8_t* ql = x + 16 + (five ? kQK_K / 8 : 0);
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0, is = 0; j < kQK_K; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
          uint8_t sc, mn;
          ScaleMinK4(is, scales, &sc, &mn);
          const float d1 = d * sc, m1 = dmin * mn;
          ScaleMinK4(is + 1, scales, &sc, &mn);
          const float d2 = d * sc, m2 = dmin * mn;
          for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0xF) + (five && (qh[l] & u1) ? 16 : 0)) - m1;
          for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (five && (qh[l] & u2) ? 16 : 0)) - m2;
        }
      }
      return true;
    case GgmlType::kQ6_K:
      for (int64_t i = 0; i < nb; ++i, x += blk.bytes) {
        const uint8_t* ql = x;
        const uint8_t* qh = x + kQK_K / 2;
        const int8_t* sc = reinterpret_cast<const int8_t*>(x + kQK_K / 2 + kQK_K / 4);
        const float d = F16At(x + kQK_K / 2 + kQK_K / 4 + kQK_K / 16);
        for (int part = 0; part < kQK_K; part += 128, y += 128, ql += 64, qh += 32, sc += 8) {
          for (int l = 0; l < 32; ++l) {
            const int is = l / 16;
            const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * sc[is] * q1;
            y[l + 32] = d * sc[is + 2] * q2;
            y[l + 64] = d * sc[is + 4] * q3;
            y[l + 96] = d * sc[is + 6] * q4;
          }
        }
      }
      return true;
    default:
      return false;
  }
}

int64_t GgufTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

bool IsGgufFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, 4) && std::memcmp(magic, "GGUF", 4) == 0;
}

GgufFile::~GgufFile() = default;

Result<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  std::unique_ptr<GgufFile> g(new GgufFile());
  g->path_ = path;
  QUARRY_ASSIGN_OR_RETURN(g->file_, MappedFile::Open(path));
  QUARRY_RETURN_IF_ERROR(g->Parse());
  return g;
}

Status GgufFile::Parse() {
  Reader r(file_->data(), file_->size(), path_);
  char magic[4];
  for (char& c : magic) QUARRY_RETURN_IF_ERROR(r.Read(&c, "the magic"));
  if (std::memcmp(magic, "GGUF", 4) != 0) return Status::InvalidArgument(path_ + ": not a GGUF file (bad magic)");
  QUARRY_RETURN_IF_ERROR(r.Read(&version_, "the version"));
  if (version_ != 2 && version_ != 3) {
    return Status::InvalidArgument(path_ + ": GGUF version " + std::to_string(version_) +
                                   " (supported: 2 and 3; a big-endian file reads as a huge version)");
  }
  uint64_t n_tensors = 0, n_kv = 0;
  QUARRY_RETURN_IF_ERROR(r.Read(&n_tensors, "the tensor count"));
  QUARRY_RETURN_IF_ERROR(r.Read(&n_kv, "the metadata count"));
  // Each key-value pair takes at least 12 bytes and each tensor info at least 24: a count beyond what
  // the file can hold is a lie, refused before anything is allocated for it.
  if (n_kv > r.remaining() / 12 || n_tensors > r.remaining() / 24) {
    return Status::Corruption(path_ + ": header claims " + std::to_string(n_kv) + " metadata values and " +
                              std::to_string(n_tensors) + " tensors, more than the file holds");
  }
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key;
    QUARRY_RETURN_IF_ERROR(r.ReadString(&key, "a metadata key"));
    uint32_t type = 0;
    const std::string what = "metadata '" + key + "'";
    QUARRY_RETURN_IF_ERROR(r.Read(&type, what.c_str()));
    GgufValue v;
    QUARRY_RETURN_IF_ERROR(ReadValue(&r, type, &v, what.c_str()));
    if (!metadata_.emplace(key, std::move(v)).second) {
      return Status::Corruption(path_ + ": metadata key '" + key + "' appears twice");
    }
  }
  uint64_t alignment = 32;
  if (const GgufValue* a = Find("general.alignment")) {
    if (a->kind != GgufValue::Kind::kUint || a->u == 0 || (a->u & (a->u - 1)) != 0 || a->u > 4096) {
      return Status::Corruption(path_ + ": general.alignment must be a power of two up to 4096");
    }
    alignment = a->u;
  }
  std::vector<std::pair<std::string, uint64_t>> order;  // name, offset, in file order
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensor t;
    QUARRY_RETURN_IF_ERROR(r.ReadString(&t.name, "a tensor name"));
    const std::string what = "tensor '" + t.name + "'";
    uint32_t n_dims = 0;
    QUARRY_RETURN_IF_ERROR(r.Read(&n_dims, what.c_str()));
    if (n_dims < 1 || n_dims > 4) {
      return Status::Corruption(path_ + ": " + what + " has " + std::to_string(n_dims) + " dimensions (1 to 4)");
    }
    uint64_t total = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t ne = 0;
      QUARRY_RETURN_IF_ERROR(r.Read(&ne, what.c_str()));
      if (ne == 0 || ne > (uint64_t{1} << 40) || total > (uint64_t{1} << 50) / ne) {
        return Status::Corruption(path_ + ": " + what + " has an empty or impossible dimension " + std::to_string(ne));
      }
      total *= ne;
      t.ne.push_back(static_cast<int64_t>(ne));
    }
    uint64_t offset = 0;
    QUARRY_RETURN_IF_ERROR(r.Read(&t.type, what.c_str()));
    QUARRY_RETURN_IF_ERROR(r.Read(&offset, what.c_str()));
    const GgmlBlock blk = GgmlBlockOf(t.type);
    if (blk.elements == 0) {
      return Status::InvalidArgument(path_ + ": " + what + " has ggml " + GgmlTypeName(t.type) +
                                     ", which this reader does not support");
    }
    if (t.ne[0] % blk.elements != 0) {
      return Status::Corruption(path_ + ": " + what + " has rows of " + std::to_string(t.ne[0]) + " elements, not a multiple of the " +
                                GgmlTypeName(t.type) + " block of " + std::to_string(blk.elements));
    }
    t.bytes = total / blk.elements * blk.bytes;
    order.emplace_back(t.name, offset);
    if (!tensors_.emplace(t.name, std::move(t)).second) {
      return Status::Corruption(path_ + ": tensor '" + order.back().first + "' appears twice");
    }
  }
  const uint64_t data_start = (r.pos() + alignment - 1) / alignment * alignment;
  // As llama.cpp requires: tensors back to back in header order, each padded to the alignment.
  uint64_t expected = 0;
  for (const auto& [name, offset] : order) {
    GgufTensor& t = tensors_.at(name);
    if (offset != expected) {
      return Status::Corruption(path_ + ": tensor '" + name + "' starts at data offset " + std::to_string(offset) +
                                ", expected " + std::to_string(expected));
    }
    if (data_start + offset + t.bytes > file_->size()) {
      return Status::Corruption(path_ + ": tensor '" + name + "' (" + std::to_string(t.bytes) + " bytes at offset " +
                                std::to_string(data_start + offset) + ") runs past the end of the file (" +
                                std::to_string(file_->size()) + " bytes); truncated?");
    }
    t.data = file_->data() + data_start + offset;
    expected = offset + (t.bytes + alignment - 1) / alignment * alignment;
  }
  return Status::Ok();
}

const GgufValue* GgufFile::Find(const std::string& key) const {
  auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

namespace {
Status WrongType(const std::string& path, const std::string& key, const GgufValue& v, const char* want) {
  return Status::InvalidArgument(path + ": metadata '" + key + "' is " +
                                 (v.kind == GgufValue::Kind::kArray ? std::string("an array of ") : std::string()) +
                                 ValueTypeName(v.type) + ", expected " + want);
}
}  // namespace

Result<std::string> GgufFile::GetString(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return Status::NotFound(path_ + ": no metadata '" + key + "'");
  if (v->kind != GgufValue::Kind::kString) return WrongType(path_, key, *v, "a string");
  return v->s;
}

Result<int64_t> GgufFile::GetInt(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return Status::NotFound(path_ + ": no metadata '" + key + "'");
  if (v->kind == GgufValue::Kind::kInt) return v->i;
  if (v->kind == GgufValue::Kind::kUint && v->u <= uint64_t(std::numeric_limits<int64_t>::max())) {
    return static_cast<int64_t>(v->u);
  }
  return WrongType(path_, key, *v, "an integer");
}

Result<double> GgufFile::GetFloat(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return Status::NotFound(path_ + ": no metadata '" + key + "'");
  if (v->kind == GgufValue::Kind::kFloat) return v->f;
  if (v->kind == GgufValue::Kind::kInt) return static_cast<double>(v->i);
  if (v->kind == GgufValue::Kind::kUint) return static_cast<double>(v->u);
  return WrongType(path_, key, *v, "a number");
}

Result<bool> GgufFile::GetBool(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return Status::NotFound(path_ + ": no metadata '" + key + "'");
  if (v->kind != GgufValue::Kind::kBool) return WrongType(path_, key, *v, "a bool");
  return v->b;
}

Result<const std::vector<std::string>*> GgufFile::GetStrings(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return Status::NotFound(path_ + ": no metadata '" + key + "'");
  if (v->kind != GgufValue::Kind::kArray || v->type != kString) return WrongType(path_, key, *v, "an array of strings");
  return &v->strings;
}

Result<const std::vector<int64_t>*> GgufFile::GetInts(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return Status::NotFound(path_ + ": no metadata '" + key + "'");
  if (v->kind != GgufValue::Kind::kArray || v->type == kString || v->type == kF32v || v->type == kF64) {
    return WrongType(path_, key, *v, "an array of integers");
  }
  return &v->ints;
}

Result<const std::vector<double>*> GgufFile::GetFloats(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return Status::NotFound(path_ + ": no metadata '" + key + "'");
  if (v->kind != GgufValue::Kind::kArray || (v->type != kF32v && v->type != kF64)) {
    return WrongType(path_, key, *v, "an array of floats");
  }
  return &v->floats;
}

Result<const GgufTensor*> GgufFile::Get(const std::string& name, const std::vector<int64_t>& shape) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) return Status::NotFound(path_ + ": no tensor '" + name + "'");
  const std::vector<int64_t> have = it->second.shape();
  if (have != shape) {
    auto str = [](const std::vector<int64_t>& s) {
      std::string out = "[";
      for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
      return out + "]";
    };
    return Status::InvalidArgument(path_ + ": tensor '" + name + "' has shape " + str(have) + ", expected " + str(shape));
  }
  return &it->second;
}

Result<std::vector<float>> GgufFile::ToF32(const GgufTensor& t) const {
  std::vector<float> out(static_cast<size_t>(t.n_elements()));
  if (!DequantizeRow(t.type, t.data, out.data(), t.n_elements())) {
    return Status::InvalidArgument(path_ + ": tensor '" + t.name + "' has ggml " + GgmlTypeName(t.type) +
                                   ", which cannot be dequantized here (supported: F32, F16, BF16, Q4_0, Q4_1, "
                                   "Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K)");
  }
  return out;
}

uint64_t GgufFile::file_bytes() const { return file_->size(); }

void GgufFile::ReleasePages(const void* p, size_t n) const { file_->ReleasePages(p, n); }

}  // namespace quarry::model
