#include "common/progress.h"

#include <unistd.h>

namespace quarry {

Progress::Progress(std::string label, uint64_t total_bytes, std::string unit, FILE* out)
    : label_(std::move(label)), unit_(std::move(unit)), total_bytes_(total_bytes), out_(out),
      enabled_(isatty(fileno(out)) != 0), start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

Progress::~Progress() { Finish(); }

void Progress::Update(uint64_t n_items, uint64_t bytes_done) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(200)) return;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? n_items / elapsed : 0;
  std::fprintf(out_, "\r%s: %llu %s, %.0f %s/s", label_.c_str(), static_cast<unsigned long long>(n_items),
               unit_.c_str(), rate, unit_.c_str());
  if (total_bytes_ > 0 && bytes_done > 0) {
    const double frac = static_cast<double>(bytes_done) / total_bytes_;
    const double eta = elapsed * (1 - frac) / frac;
    std::fprintf(out_, ", %.0f%%, ETA %.0fs", 100 * frac, eta);
  }
  std::fprintf(out_, "\033[K");
  std::fflush(out_);
}

void Progress::Finish() {
  if (enabled_ && !finished_) {
    std::fprintf(out_, "\r\033[K");
    std::fflush(out_);
  }
  finished_ = true;
}

}  // namespace quarry
