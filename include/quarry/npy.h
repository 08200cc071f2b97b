// Reads NumPy .npy files of float vectors (the format `numpy.save` writes): a 2-D array of little-endian
// float32 ('<f4') or float64 ('<f8', narrowed to float32), C order; a 1-D array (dim,) reads as one row.
// For vectors computed elsewhere (Collection::PutVectors, SearchVector). Every size in the header is
// checked against the file before anything is allocated; errors name the file and what is wrong (bad
// magic, unsupported dtype or order, not 2-D, truncated data).
#pragma once

#include <string>
#include <vector>

#include "quarry/status.h"

namespace quarry {

struct NpyMatrix {
  size_t rows = 0, cols = 0;
  std::vector<float> data;  // row-major [rows, cols]
};

Result<NpyMatrix> ReadNpy(const std::string& path);

}  // namespace quarry
