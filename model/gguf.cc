#include "model/gguf.h"

#include <cstring>
#include <fstream>
#include <limits>
#include <type_traits>

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

// The float16 stored (unaligned) at p, widened: a block's scale.
float F16At(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return F16ToF32(h);
}

// Scale and min of sub-block j (< 8) of a Q4_K/Q5_K super-block: 6 bits each, packed in its 12 bytes.
void ScaleMinK4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

}  // namespace

bool QuantBlockOf(uint32_t type, QuantBlock* f) {
  const GgmlType t = static_cast<GgmlType>(type);
  const GgmlBlock g = GgmlBlockOf(type);
  switch (t) {
    case GgmlType::kQ8_0: *f = {t, g.elements, g.bytes, 128, false, false, false}; return true;
    case GgmlType::kQ4_0: *f = {t, g.elements, g.bytes, 8, true, false, false}; return true;
    case GgmlType::kQ4_1: *f = {t, g.elements, g.bytes, 0, true, true, false}; return true;
    case GgmlType::kQ5_0: *f = {t, g.elements, g.bytes, 16, false, false, false}; return true;
    case GgmlType::kQ5_1: *f = {t, g.elements, g.bytes, 0, false, true, false}; return true;
    case GgmlType::kQ4_K: *f = {t, g.elements, g.bytes, 0, true, true, false}; return true;
    case GgmlType::kQ5_K: *f = {t, g.elements, g.bytes, 0, false, true, false}; return true;
    case GgmlType::kQ6_K: *f = {t, g.elements, g.bytes, 32, false, false, true}; return true;
    default: return false;
  }
}

namespace {

// UnpackQuantBlock for one type, known at compile time so that the dequantizing loops specialise.
template <GgmlType T>
[[gnu::noinline]] void Unpack(const QuantBlock& f, const uint8_t* row, size_t b, uint8_t* u, float* scale, float* min) {
  *min = 0;
  if constexpr (T == GgmlType::kQ6_K) {
    // Super-block: 128 bytes of low nibbles, 64 of high 2-bit pairs, 16 int8 scales (one per 16
    // elements), d (float16). Each 128-element half p has 4 sub-blocks s of 32: low nibbles of
    // ql[64p + 32 (s % 2) + k] (high nibbles for s >= 2), high bits (qh[32p + k] >> 2s) & 3.
    const uint8_t* x = row + b / 8 * f.bytes;
    const int sub = static_cast<int>(b % 8), part = sub / 4, s = sub % 4;
    const uint8_t* ql = x + 64 * part + 32 * (s % 2);
    const uint8_t* qh = x + 128 + 32 * part;
    const int8_t* sc = reinterpret_cast<const int8_t*>(x + 192) + 8 * part + 2 * s;
    const float d = F16At(x + 208);
    scale[0] = d * sc[0], scale[1] = d * sc[1];
    for (int k = 0; k < kQK; ++k) {
      const int low = s < 2 ? ql[k] & 0x0F : ql[k] >> 4;
      u[k] = static_cast<uint8_t>(low | ((qh[k] >> (2 * s)) & 3) << 4);
    }
  } else if constexpr (T == GgmlType::kQ4_K || T == GgmlType::kQ5_K) {
    // Super-block: d, dmin (float16), 12 bytes of 6-bit sub-block scales and mins, (Q5_K: 32 bytes of
    // fifth bits), 128 bytes of nibbles: 64-element chunk c holds sub-blocks 2c (low nibbles) and 2c + 1
    // (high nibbles) of the same 32 bytes. Values d sc q - dmin m (both products exact in float32).
    const uint8_t* x = row + b / 8 * f.bytes;
    const int sub = static_cast<int>(b % 8), chunk = sub / 2;
    uint8_t sc, mn;
    ScaleMinK4(sub, x + 4, &sc, &mn);
    scale[0] = scale[1] = F16At(x) * sc;
    *min = -(F16At(x + 2) * mn);
    constexpr bool kFive = T == GgmlType::kQ5_K;
    const uint8_t* qh = x + 16;
    const uint8_t* ql = x + 16 + (kFive ? 32 : 0) + 32 * chunk;
    const int shift = sub % 2 == 0 ? 0 : 4;
    for (int k = 0; k < kQK; ++k) {
      const int high = kFive && (qh[k] >> sub & 1) ? 16 : 0;
      u[k] = static_cast<uint8_t>(((ql[k] >> shift) & 0x0F) + high);
    }
  } else if constexpr (T == GgmlType::kQ8_0) {  // d, 32 int8 quants
    const uint8_t* x = row + b * f.bytes;
    scale[0] = scale[1] = F16At(x);
    for (int k = 0; k < kQK; ++k) u[k] = static_cast<uint8_t>(static_cast<int8_t>(x[2 + k]) + 128);
  } else {
    // Q4_0, Q4_1, Q5_0, Q5_1: d, (m), (32 fifth bits), 16 bytes of nibbles: element k in qs[k]'s low
    // nibble, element k + 16 in its high one.
    constexpr bool kMin = T == GgmlType::kQ4_1 || T == GgmlType::kQ5_1;
    constexpr bool kFive = T == GgmlType::kQ5_0 || T == GgmlType::kQ5_1;
    const uint8_t* x = row + b * f.bytes;
    scale[0] = scale[1] = F16At(x);
    size_t at = 2;
    if constexpr (kMin) *min = F16At(x + at), at += 2;
    uint32_t qh = 0;  // each element's fifth bit
    if constexpr (kFive) std::memcpy(&qh, x + at, 4), at += 4;
    const uint8_t* qs = x + at;
    for (int k = 0; k < kQK / 2; ++k) {
      u[k] = static_cast<uint8_t>((qs[k] & 0x0F) | (((qh >> k) << 4) & 0x10));
      u[k + 16] = static_cast<uint8_t>((qs[k] >> 4) | ((qh >> (k + 12)) & 0x10));
    }
  }
}

// fn(std::integral_constant<GgmlType, T>) for f's type T.
template <typename Fn>
void WithQuantType(const QuantBlock& f, Fn&& fn) {
  switch (f.type) {
    case GgmlType::kQ8_0: return fn(std::integral_constant<GgmlType, GgmlType::kQ8_0>{});
    case GgmlType::kQ4_0: return fn(std::integral_constant<GgmlType, GgmlType::kQ4_0>{});
    case GgmlType::kQ4_1: return fn(std::integral_constant<GgmlType, GgmlType::kQ4_1>{});
    case GgmlType::kQ5_0: return fn(std::integral_constant<GgmlType, GgmlType::kQ5_0>{});
    case GgmlType::kQ5_1: return fn(std::integral_constant<GgmlType, GgmlType::kQ5_1>{});
    case GgmlType::kQ4_K: return fn(std::integral_constant<GgmlType, GgmlType::kQ4_K>{});
    case GgmlType::kQ5_K: return fn(std::integral_constant<GgmlType, GgmlType::kQ5_K>{});
    case GgmlType::kQ6_K: return fn(std::integral_constant<GgmlType, GgmlType::kQ6_K>{});
    default: return;
  }
}

}  // namespace

void UnpackQuantBlock(const QuantBlock& f, const uint8_t* row, size_t b, uint8_t* u, float* scale, float* min) {
  WithQuantType(f, [&](auto type) { Unpack<decltype(type)::value>(f, row, b, u, scale, min); });
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
  QuantBlock q;
  if (QuantBlockOf(type, &q)) {
    WithQuantType(q, [&](auto type) {
      uint8_t u[kQK];
      float scale[2], min;
      for (int64_t b = 0; b < n / kQK; ++b, y += kQK) {
        // Q8_0's quants are the values' integers: the unsigned detour cost 8% of a Q8_0 forward.
        if constexpr (decltype(type)::value == GgmlType::kQ8_0) {
          const float d = F16At(x + b * q.bytes);
          const int8_t* qs = reinterpret_cast<const int8_t*>(x + b * q.bytes + 2);
          for (int k = 0; k < kQK; ++k) y[k] = static_cast<float>(qs[k]) * d;
          continue;
        }
        Unpack<decltype(type)::value>(q, x, static_cast<size_t>(b), u, scale, &min);
        for (int half = 0; half < 2; ++half) {
          for (int k = 16 * half; k < 16 * half + 16; ++k) y[k] = scale[half] * static_cast<float>(u[k] - q.offset) + min;
        }
      }
    });
    return true;
  }
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
