// Per-thread scratch buffers reached through one call.
#pragma once

namespace quarry {

// The calling thread's own T, value-initialised on first use. Take the reference once per call of the
// code that uses it: in a shared library (the Python module) every access to a thread_local by name is
// a __tls_get_addr call, and GCC recomputes that address inside hot loops rather than keep it in a
// register (it cost ~8% of a BM25 search from Python). The reference from this opaque call is computed
// once. Each T names one use (a struct of that code's buffers), so uses never share a buffer.
template <typename T>
[[gnu::noinline]] T& ThreadScratch() {
  thread_local T scratch{};
  return scratch;
}

}  // namespace quarry
