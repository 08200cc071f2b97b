// A float32 weight matrix: a view into the mapped checkpoint when it is stored as F32, otherwise
// converted once (BF16 and F16 widen exactly) and owned.
#pragma once

#include <string>
#include <vector>

#include "model/safetensors.h"

namespace quarry::model {

struct Weight {
  std::vector<float> owned;
  const float* data = nullptr;
  size_t size = 0;
  static Result<Weight> Load(const Checkpoint& ckpt, const std::string& name, const std::vector<int64_t>& shape);
  // Bytes this weight holds beyond the mapping (0 for a view).
  size_t owned_bytes() const { return owned.size() * sizeof(float); }
};

inline Result<Weight> Weight::Load(const Checkpoint& ckpt, const std::string& name, const std::vector<int64_t>& shape) {
  QUARRY_ASSIGN_OR_RETURN(const TensorView* t, ckpt.Get(name, shape));
  Weight w;
  w.size = t->n_elements();
  if (t->dtype == DType::kF32 && reinterpret_cast<uintptr_t>(t->data) % alignof(float) == 0) {
    w.data = static_cast<const float*>(t->data);
  } else {
    QUARRY_ASSIGN_OR_RETURN(w.owned, ckpt.GetF32(name, shape));
    w.data = w.owned.data();
  }
  return w;
}

}  // namespace quarry::model
