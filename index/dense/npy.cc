#include "quarry/npy.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>

namespace quarry {

Result<NpyMatrix> ReadNpy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(path + ": cannot open");
  auto bad = [&](const std::string& what) { return Status::InvalidArgument(path + ": " + what); };
  // Every size the header claims is checked against the file's before anything is allocated.
  std::error_code ec;
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) return Status::IOError(path + ": " + ec.message());
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
  const uint64_t prefix = magic[6] == 1 ? 10 : 12;
  if (header_len > 1 << 20 || header_len > file_size - std::min(file_size, prefix)) {
    return bad("header claims " + std::to_string(header_len) + " bytes; the file has " + std::to_string(file_size));
  }
  std::string header(header_len, '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(header_len))) return bad("truncated header");
  std::smatch m;
  if (!std::regex_search(header, m, std::regex("'descr':\\s*'([^']*)'"))) return bad("header has no descr");
  const std::string descr = m[1];
  if (descr != "<f4" && descr != "<f8") return bad("dtype " + descr + " (need float32 '<f4' or float64 '<f8')");
  if (std::regex_search(header, std::regex("'fortran_order':\\s*True"))) return bad("Fortran order (save a C-order array)");
  if (!std::regex_search(header, m, std::regex("'shape':\\s*\\(\\s*(\\d+)\\s*(?:,\\s*(\\d+)\\s*)?,?\\s*\\)"))) {
    return bad("shape is not 2-D (rows, dim) or 1-D (dim,)");
  }
  NpyMatrix out;
  // A 1-D array (dim,) is one row.
  const std::string rows_text = m[2].matched ? std::string(m[1]) : "1";
  const std::string cols_text = m[2].matched ? std::string(m[2]) : std::string(m[1]);
  if (rows_text.size() > 18 || cols_text.size() > 18) return bad("shape (" + rows_text + ", " + cols_text + ") too large");
  out.rows = std::stoull(rows_text);
  out.cols = std::stoull(cols_text);
  const uint64_t item = descr == "<f4" ? 4 : 8;
  const uint64_t data_bytes = file_size - prefix - header_len;
  if (out.cols == 0) return bad("shape (" + rows_text + ", 0) has no columns");
  if (out.rows > data_bytes / item / out.cols) {
    return bad("truncated data: shape (" + rows_text + ", " + cols_text + ") needs more than the " +
               std::to_string(data_bytes) + " data bytes the file has");
  }
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
