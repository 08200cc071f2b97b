#include "index/dense/npy.h"

#include <cstring>
#include <fstream>
#include <regex>

namespace quarry {

Result<NpyMatrix> ReadNpy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(path + ": cannot open");
  auto bad = [&](const std::string& what) { return Status::InvalidArgument(path + ": " + what); };
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0) return bad("not a .npy file (bad magic)");
  size_t header_len = 0;
  if (magic[6] == 1) {
    unsigned char len[2];
    if (!in.read(reinterpret_cast<char*>(len), 2)) return bad("truncated header");
    header_len = len[0] | (len[1] << 8);
  } else if (magic[6] == 2 || magic[6] == 3) {
    unsigned char len[4];
    if (!in.read(reinterpret_cast<char*>(len), 4)) return bad("truncated header");
    header_len = len[0] | (len[1] << 8) | (len[2] << 16) | (static_cast<size_t>(len[3]) << 24);
  } else {
    return bad("unsupported .npy version " + std::to_string(magic[6]));
  }
  std::string header(header_len, '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(header_len))) return bad("truncated header");
  std::smatch m;
  if (!std::regex_search(header, m, std::regex("'descr':\\s*'([^']*)'"))) return bad("header has no descr");
  const std::string descr = m[1];
  if (descr != "<f4" && descr != "<f8") return bad("dtype " + descr + " (need float32 '<f4' or float64 '<f8')");
  if (std::regex_search(header, std::regex("'fortran_order':\\s*True"))) return bad("Fortran order (save a C-order array)");
  if (!std::regex_search(header, m, std::regex("'shape':\\s*\\(\\s*(\\d+)\\s*,\\s*(\\d+)\\s*,?\\s*\\)"))) {
    return bad("shape is not 2-D (rows, dim)");
  }
  NpyMatrix out;
  out.rows = std::stoull(m[1]);
  out.cols = std::stoull(m[2]);
  const size_t n = out.rows * out.cols;
  out.data.resize(n);
  if (descr == "<f4") {
    if (!in.read(reinterpret_cast<char*>(out.data.data()), static_cast<std::streamsize>(n * 4))) {
      return bad("truncated data: expected " + std::to_string(n * 4) + " bytes");
    }
  } else {
    std::vector<double> wide(n);
    if (!in.read(reinterpret_cast<char*>(wide.data()), static_cast<std::streamsize>(n * 8))) {
      return bad("truncated data: expected " + std::to_string(n * 8) + " bytes");
    }
    for (size_t i = 0; i < n; ++i) out.data[i] = static_cast<float>(wide[i]);
  }
  return out;
}

}  // namespace quarry
