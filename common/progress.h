// A one-line progress meter for long jobs: rate and ETA, redrawn in place, only when the stream is a
// terminal (scripts and CI see nothing). Not thread-safe; call from the thread doing the work.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace quarry {

class Progress {
 public:
  // `total_bytes` (0 = unknown) drives the ETA; `unit` names what Update counts ("docs").
  Progress(std::string label, uint64_t total_bytes, std::string unit, FILE* out = stderr);
  ~Progress();
  void Update(uint64_t n_items, uint64_t bytes_done);
  void Finish();
  bool enabled() const { return enabled_; }

 private:
  std::string label_, unit_;
  uint64_t total_bytes_;
  FILE* out_;
  bool enabled_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace quarry
