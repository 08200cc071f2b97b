// quarry._quarry: the Python extension module, a thin shell over include/quarry (nanobind).
//
// Contracts kept here, so that Python code cannot crash the interpreter or hang it:
//  - every non-OK Status becomes a Python exception of the class named by its code (QuarryError and its
//    subclasses, made in MakeErrorClasses), carrying `code` and `message`;
//  - calls that do real work (ingest, search, index building, reranking) release the GIL; callbacks into
//    Python (progress) take it back, and an exception a callback raises is re-raised when the call ends;
//  - numpy arrays are checked for dtype, shape and size before any pointer is read.
#include <nanobind/make_iterator.h>
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/function.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/string_view.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include <tbb/task_arena.h>

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "quarry/collection.h"
#include "quarry/eval.h"
#include "quarry/hierarchical.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace quarry::python {
namespace {

// --- Errors -----------------------------------------------------------------------------------------

// A non-OK Status on its way to Python (translated by the exception translator in NB_MODULE).
struct StatusError {
  Status status;
};

void Check(const Status& s) {
  if (!s.ok()) throw StatusError{s};
}
template <typename T>
T Unwrap(Result<T> r) {
  if (!r.ok()) throw StatusError{r.status()};
  return std::move(r).value();
}

// The Python class per StatusCode; index = the code's value. Created once at import.
PyObject* g_error_classes[8] = {};

const char* CodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kInvalidArgument: return "InvalidArgument";
    case StatusCode::kNotFound: return "NotFound";
    case StatusCode::kCorruption: return "Corruption";
    case StatusCode::kIOError: return "IOError";
    case StatusCode::kAlreadyExists: return "AlreadyExists";
    case StatusCode::kFailedPrecondition: return "FailedPrecondition";
    case StatusCode::kInternal: return "Internal";
  }
  return "Unknown";
}

// QuarryError(Exception) and one subclass per code, each also deriving from the builtin a Python user
// would catch for it (InvalidArgumentError is a ValueError, NotFoundError a LookupError, IOError an OSError).
void MakeErrorClasses(nb::module_& m) {
  PyObject* base = PyErr_NewExceptionWithDoc(
      "quarry.QuarryError", "A Quarry call failed; `code` names the Status code, `message` says why.",
      PyExc_Exception, nullptr);
  m.attr("QuarryError") = nb::handle(base);
  g_error_classes[0] = base;
  struct Sub {
    StatusCode code;
    const char* name;
    PyObject* builtin;
  };
  const Sub subs[] = {
      {StatusCode::kInvalidArgument, "InvalidArgumentError", PyExc_ValueError},
      {StatusCode::kNotFound, "NotFoundError", PyExc_LookupError},
      {StatusCode::kCorruption, "CorruptionError", nullptr},
      {StatusCode::kIOError, "IOError", PyExc_OSError},
      {StatusCode::kAlreadyExists, "AlreadyExistsError", nullptr},
      {StatusCode::kFailedPrecondition, "FailedPreconditionError", nullptr},
      {StatusCode::kInternal, "InternalError", nullptr},
  };
  for (const Sub& s : subs) {
    nb::tuple bases = s.builtin ? nb::make_tuple(nb::handle(base), nb::handle(s.builtin)) : nb::make_tuple(nb::handle(base));
    const std::string qualified = std::string("quarry.") + s.name;
    PyObject* cls = PyErr_NewException(qualified.c_str(), bases.ptr(), nullptr);
    m.attr(s.name) = nb::handle(cls);
    g_error_classes[static_cast<int>(s.code)] = cls;
  }
}

void RaiseStatus(const Status& s) {
  PyObject* cls = g_error_classes[static_cast<int>(s.code())];
  if (!cls) cls = g_error_classes[0];
  nb::object error = nb::handle(cls)(s.message());
  error.attr("code") = CodeName(s.code());
  error.attr("message") = s.message();
  PyErr_SetObject(cls, error.ptr());
}

// Runs `work` without the GIL. `callback_error` receives the first exception a Python callback raised
// meanwhile (the C++ side cannot stop for it); it is re-raised here once `work` is done.
template <typename F>
auto WithoutGil(F&& work, std::optional<nb::python_error>* callback_error = nullptr) {
  auto finish = [&] {
    if (callback_error && callback_error->has_value()) {
      nb::python_error e = std::move(**callback_error);
      callback_error->reset();
      throw e;
    }
  };
  if constexpr (std::is_void_v<decltype(work())>) {
    {
      nb::gil_scoped_release release;
      work();
    }
    finish();
  } else {
    std::optional<decltype(work())> out;
    {
      nb::gil_scoped_release release;
      out.emplace(work());
    }
    finish();
    return std::move(*out);
  }
}

// A C++ callback that calls a Python callable with the GIL held, remembering (not propagating) what it raises.
template <typename... Args>
// `callable` is borrowed: the caller's frame owns it for the whole call (copies of the std::function may be
// destroyed inside the library, without the GIL, so they must not own a reference).
std::function<void(Args...)> GuardedCallback(nb::handle callable, std::optional<nb::python_error>* error) {
  if (callable.is_none()) return {};
  return [callable, error](Args... args) {
    nb::gil_scoped_acquire acquire;
    if (error->has_value()) return;
    try {
      callable(args...);
    } catch (nb::python_error& e) {
      error->emplace(std::move(e));
    }
  };
}

// Python's repr of a string or number, for __repr__ methods.
std::string Repr(const std::string& s) { return nb::repr(nb::str(s.c_str(), s.size())).c_str(); }
std::string Repr(double v) { return nb::repr(nb::float_(v)).c_str(); }

// --- Options from keyword arguments ------------------------------------------------------------------

RetrievalMode ParseMode(std::string_view s) {
  if (s == "bm25") return RetrievalMode::kBm25;
  if (s == "dense") return RetrievalMode::kDense;
  if (s == "hybrid") return RetrievalMode::kHybrid;
  throw StatusError{Status::InvalidArgument("mode '" + std::string(s) + "': expected 'bm25', 'dense' or 'hybrid'")};
}
Fusion ParseFusion(std::string_view s) {
  if (s == "rrf") return Fusion::kRrf;
  if (s == "linear") return Fusion::kLinear;
  throw StatusError{Status::InvalidArgument("fusion '" + std::string(s) + "': expected 'rrf' or 'linear'")};
}
InputFormat ParseFormat(std::string_view s) {
  if (s == "beir") return InputFormat::kBeir;
  if (s == "msmarco") return InputFormat::kMsMarco;
  if (s == "jsonl") return InputFormat::kJsonl;
  throw StatusError{Status::InvalidArgument("format '" + std::string(s) + "': expected 'beir', 'msmarco' or 'jsonl'")};
}
VectorTable ParseTable(std::string_view s) {
  if (s == "documents") return VectorTable::kDocuments;
  if (s == "queries") return VectorTable::kQueries;
  throw StatusError{Status::InvalidArgument("table '" + std::string(s) + "': expected 'documents' or 'queries'")};
}
ResMemNeighbours ParseNeighbours(std::string_view s) {
  if (s == "bm25") return ResMemNeighbours::kBm25;
  if (s == "dense") return ResMemNeighbours::kDense;
  throw StatusError{Status::InvalidArgument("neighbours '" + std::string(s) + "': expected 'bm25' or 'dense'")};
}

SearchOptions MakeSearchOptions(size_t k, std::string_view mode, std::string_view fusion, size_t rrf_k, float alpha,
                                size_t fusion_depth, bool rerank, bool resmem, bool hydrate, bool exhaustive) {
  SearchOptions o;
  o.k = k;
  o.mode = ParseMode(mode);
  o.fusion = ParseFusion(fusion);
  o.rrf_k = rrf_k;
  o.alpha = alpha;
  o.fusion_depth = fusion_depth;
  o.rerank = rerank;
  o.resmem = resmem;
  o.hydrate = hydrate;
  o.exhaustive = exhaustive;
  return o;
}
// The keyword arguments every search method takes after its first ones (SearchOptions's fields).
#define QUARRY_SEARCH_ARGS                                                                                 \
  "k"_a = 10, nb::kw_only(), "mode"_a = "bm25", "fusion"_a = "rrf", "rrf_k"_a = 60, "alpha"_a = 0.5f,     \
      "fusion_depth"_a = 100, "rerank"_a = false, "resmem"_a = false, "hydrate"_a = true, "exhaustive"_a = false
#define QUARRY_SEARCH_PARAMS                                                                                 \
  size_t k, std::string_view mode, std::string_view fusion, size_t rrf_k, float alpha, size_t fusion_depth, \
      bool rerank, bool resmem, bool hydrate, bool exhaustive
#define QUARRY_SEARCH_OPTIONS MakeSearchOptions(k, mode, fusion, rrf_k, alpha, fusion_depth, rerank, resmem, hydrate, exhaustive)

RerankOptions MakeRerankOptions(int scoring_layer, int n_signal, size_t max_block_length, int32_t query_position,
                                size_t window, bool query_in_instruction, bool calibrate, bool bf16_activations,
                                bool quantized_activations, size_t depth) {
  RerankOptions o;
  o.scoring_layer = scoring_layer;
  o.n_signal = n_signal;
  o.max_block_length = max_block_length;
  o.query_position = query_position;
  o.window = window;
  o.query_in_instruction = query_in_instruction;
  o.calibrate = calibrate;
  o.bf16_activations = bf16_activations;
  o.quantized_activations = quantized_activations;
  o.depth = depth;
  return o;
}
#define QUARRY_RERANK_ARGS                                                                                   \
  nb::kw_only(), "scoring_layer"_a = 20, "n_signal"_a = 2, "max_block_length"_a = 384,                      \
      "query_position"_a = 16384, "window"_a = 0, "query_in_instruction"_a = true, "calibrate"_a = false,   \
      "bf16_activations"_a = false, "quantized_activations"_a = false, "depth"_a = 100
#define QUARRY_RERANK_PARAMS                                                                                 \
  int scoring_layer, int n_signal, size_t max_block_length, int32_t query_position, size_t window,          \
      bool query_in_instruction, bool calibrate, bool bf16_activations, bool quantized_activations, size_t depth
#define QUARRY_RERANK_OPTIONS                                                                                \
  MakeRerankOptions(scoring_layer, n_signal, max_block_length, query_position, window, query_in_instruction, \
                    calibrate, bf16_activations, quantized_activations, depth)

ResMemOptions MakeResMemOptions(size_t k, float sigma, float temperature, float lambda, size_t depth,
                                std::string_view neighbours) {
  ResMemOptions o;
  o.k = k;
  o.sigma = sigma;
  o.temperature = temperature;
  o.lambda = lambda;
  o.depth = depth;
  o.neighbours = ParseNeighbours(neighbours);
  return o;
}

// --- numpy ---------------------------------------------------------------------------------------------

using FloatArray = nb::ndarray<nb::numpy, float>;

// A numpy array owning `values`, of `shape`.
template <typename T>
nb::ndarray<nb::numpy, T> ToNumpy(std::vector<T> values, std::vector<size_t> shape) {
  auto* owned = new std::vector<T>(std::move(values));
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  return nb::ndarray<nb::numpy, T>(owned->data(), shape.size(), shape.data(), owner);
}

// The float32 values of a numpy array of `want_ndim` dimensions (1 or 2; float32 or float64, any strides),
// row-major. `what` names the argument in errors.
std::vector<float> FloatsOf(const nb::ndarray<nb::ro, nb::device::cpu>& a, size_t want_ndim, const std::string& what,
                            size_t* rows, size_t* cols) {
  std::string shape = "(";
  for (size_t i = 0; i < a.ndim(); ++i) shape += (i ? ", " : "") + std::to_string(a.shape(i));
  shape += a.ndim() == 1 ? ",)" : ")";
  if (a.ndim() != want_ndim) {
    throw StatusError{Status::InvalidArgument(what + ": expected a " + std::to_string(want_ndim) +
                                              "-D array, got shape " + shape)};
  }
  const bool f32 = a.dtype() == nb::dtype<float>(), f64 = a.dtype() == nb::dtype<double>();
  if (!f32 && !f64) throw StatusError{Status::InvalidArgument(what + ": expected float32 or float64 values")};
  *rows = want_ndim == 2 ? a.shape(0) : 1;
  *cols = a.shape(want_ndim - 1);
  const int64_t row_stride = want_ndim == 2 ? a.stride(0) : 0, col_stride = a.stride(want_ndim - 1);
  std::vector<float> out(*rows * *cols);
  const auto* base = static_cast<const char*>(a.data());
  const size_t item = f32 ? 4 : 8;
  for (size_t r = 0; r < *rows; ++r) {
    for (size_t c = 0; c < *cols; ++c) {
      const char* p = base + (static_cast<int64_t>(r) * row_stride + static_cast<int64_t>(c) * col_stride) *
                                 static_cast<int64_t>(item);
      if (f32) {
        float v;
        std::memcpy(&v, p, 4);
        out[r * *cols + c] = v;
      } else {
        double v;
        std::memcpy(&v, p, 8);
        out[r * *cols + c] = static_cast<float>(v);
      }
    }
  }
  return out;
}

// --- Hits ---------------------------------------------------------------------------------------------

// One query's hits as the library returned them. Python objects are made per hit only when asked for
// (hits[i], iteration); ids, scores and doc numbers come out whole. A k=1000 search thus costs one Python
// object, not a thousand (scripts/bench-python.sh measures the difference against the C++ library).
struct PyHits {
  std::vector<SearchHit> hits;
};

// --- Evaluation ------------------------------------------------------------------------------------------

// A run as Python gives it: qid -> [(docid, score), ...] (any order; SortRun's applies).
using PyRun = std::map<std::string, std::vector<std::pair<std::string, double>>>;

eval::Run ToRun(const PyRun& py) {
  eval::Run run;
  for (const auto& [qid, entries] : py) {
    auto& out = run[qid];
    out.reserve(entries.size());
    for (const auto& [doc, score] : entries) out.push_back({doc, score});
  }
  return run;
}
PyRun FromRun(const eval::Run& run) {
  PyRun py;
  for (const auto& [qid, entries] : run) {
    auto& out = py[qid];
    for (const auto& e : entries) out.emplace_back(e.doc, e.score);
  }
  return py;
}

struct PyEvaluation {
  std::vector<std::string> metrics;                                  // names, as printed
  std::map<std::string, double> mean;                                // metric -> mean
  std::map<std::string, std::map<std::string, double>> per_query;    // metric -> qid -> value
  std::vector<std::string> qids;                                     // evaluated queries, qrels order
};

PyEvaluation Evaluate(const eval::Qrels& qrels, const PyRun& run, const std::string& metrics, bool ignore_self,
                      int relevance_level) {
  const auto parsed = Unwrap(eval::ParseMetrics(metrics));
  if (relevance_level < 1) {
    throw StatusError{Status::InvalidArgument("relevance_level must be at least 1 (got " +
                                              std::to_string(relevance_level) + ")")};
  }
  const eval::Evaluation ev =
      eval::Evaluate(qrels, ToRun(run), parsed, {.ignore_self = ignore_self, .relevance_level = relevance_level});
  PyEvaluation out;
  out.qids = ev.qids;
  for (size_t m = 0; m < ev.metrics.size(); ++m) {
    const std::string& name = ev.metrics[m].name;
    out.metrics.push_back(name);
    out.mean[name] = ev.mean[m];
    auto& per = out.per_query[name];
    for (size_t q = 0; q < ev.qids.size(); ++q) per[ev.qids[q]] = ev.per_query[m][q];
  }
  return out;
}

// --- Collection ----------------------------------------------------------------------------------------

// Python's Collection: the C++ Collection, closed by close() or when collected.
class PyCollection {
 public:
  PyCollection(const std::string& dir, bool create, bool read_only) {
    c_ = Unwrap(WithoutGil([&] { return Collection::Open(dir, {.create_if_missing = create, .read_only = read_only}); }));
  }

  // Called with the GIL held; the copy keeps the collection alive through a call that releases it.
  std::shared_ptr<Collection> c() const {
    if (!c_) throw StatusError{Status::FailedPrecondition("the collection is closed")};
    return c_;
  }
  // Later calls raise FailedPreconditionError; calls in flight on other threads finish first.
  void Close() {
    std::shared_ptr<Collection> c = std::move(c_);
    WithoutGil([&] { c.reset(); });
  }

 private:
  std::shared_ptr<Collection> c_;
};

using Tuples = std::vector<std::tuple<std::string, std::string, std::string, std::string>>;

nb::dict StatsDict(const CollectionStats& s) {
  nb::dict d;
  d["format_version"] = s.format_version;
  d["n_docs"] = s.n_docs;
  d["next_docnum"] = s.next_docnum;
  d["lex_doc_count"] = s.lex_doc_count;
  d["lex_sum_ttf"] = s.lex_sum_ttf;
  d["lex_segments"] = s.lex_segments;
  d["lex_bytes"] = s.lex_bytes;
  d["lex_postings"] = s.lex_postings;
  d["lex_dead"] = s.lex_dead;
  d["disk_bytes"] = s.disk_bytes;
  return d;
}

nb::dict DenseInfoDict(const DenseIndexInfo& i) {
  nb::dict d;
  d["dim"] = i.dim;
  d["n_vectors"] = i.n_vectors;
  d["factory"] = i.factory;
  d["metric"] = i.metric;
  d["encoder"] = i.encoder;
  d["nprobe"] = i.nprobe;
  d["ef_search"] = i.ef_search;
  d["file_bytes"] = i.file_bytes;
  d["rebuilt"] = i.rebuilt;
  d["n_unindexed"] = i.n_unindexed;
  return d;
}

nb::dict ResMemOptionsDict(const ResMemOptions& o) {
  nb::dict d;
  d["k"] = o.k;
  d["sigma"] = o.sigma;
  d["temperature"] = o.temperature;
  d["lambda"] = o.lambda;
  d["depth"] = o.depth;
  d["neighbours"] = o.neighbours == ResMemNeighbours::kBm25 ? "bm25" : "dense";
  return d;
}

using Training = std::vector<std::tuple<std::string, std::string, std::map<std::string, int>>>;
std::vector<LabeledQuery> ToLabeled(const Training& training) {
  std::vector<LabeledQuery> out;
  out.reserve(training.size());
  for (const auto& [id, text, judgements] : training) out.push_back({id, text, judgements});
  return out;
}

}  // namespace
}  // namespace quarry::python

using namespace quarry;
using namespace quarry::python;

// quarry.hr: hierarchical retrieval (include/quarry/hierarchical.h).
void BindHierarchical(nb::module_& m) {
  nb::module_ hr = m.def_submodule("hr", "Hierarchical retrieval: datasets, training, stored hierarchies.");
  nb::class_<hr::Dataset>(hr, "Dataset",
                          "A hierarchy with its closure and train/validation/test split (Dataset.load).")
      .def_static("load", [](std::string edges, std::string wordnet, double validation_fraction, double test_fraction,
                             uint64_t split_seed) {
        hr::HierarchySource source{.edges = std::move(edges), .wordnet = std::move(wordnet),
                                   .validation_fraction = validation_fraction, .test_fraction = test_fraction,
                                   .split_seed = split_seed};
        return Unwrap(WithoutGil([&] { return hr::Dataset::Load(source); }));
      }, nb::kw_only(), "edges"_a = "", "wordnet"_a = hr::kDefaultWordNetNouns, "validation_fraction"_a = 0.05,
         "test_fraction"_a = 0.1, "split_seed"_a = 42,
         "An edge list (child<TAB>parent lines) when `edges` is given, else WordNet's data.noun; pairs at\n"
         "distance >= 2 split into validation and test with a seeded generator.")
      .def_prop_ro("n_nodes", &hr::Dataset::n_nodes)
      .def_prop_ro("n_pairs", &hr::Dataset::n_pairs)
      .def_prop_ro("max_distance", &hr::Dataset::max_distance)
      .def_prop_ro("n_train", &hr::Dataset::n_train)
      .def_prop_ro("n_validation", &hr::Dataset::n_validation)
      .def_prop_ro("n_test", &hr::Dataset::n_test)
      .def("__repr__", [](const hr::Dataset& d) {
        return "Dataset(n_nodes=" + std::to_string(d.n_nodes()) + ", n_pairs=" + std::to_string(d.n_pairs()) + ")";
      });
  nb::class_<hr::Embeddings>(hr, "Embeddings", "Query and document tables, [n_nodes, dim] each, in node order.")
      .def("__init__", [](hr::Embeddings* e, const nb::ndarray<nb::ro, nb::device::cpu>& queries,
                          const nb::ndarray<nb::ro, nb::device::cpu>& docs) {
        size_t q_rows = 0, q_dim = 0, d_rows = 0, d_dim = 0;
        auto q = FloatsOf(queries, 2, "queries", &q_rows, &q_dim);
        auto d = FloatsOf(docs, 2, "docs", &d_rows, &d_dim);
        if (q_rows != d_rows || q_dim != d_dim) {
          throw StatusError{Status::InvalidArgument("queries and docs must have one shape")};
        }
        new (e) hr::Embeddings{.dim = q_dim, .queries = std::move(q), .docs = std::move(d)};
      }, "queries"_a, "docs"_a)
      .def_ro("dim", &hr::Embeddings::dim)
      .def_prop_ro("n_nodes", &hr::Embeddings::n_nodes)
      .def_prop_ro("queries", [](const hr::Embeddings& e) { return ToNumpy(e.queries, {e.n_nodes(), e.dim}); },
                   nb::rv_policy::move, "the query table (float32 numpy array [n_nodes, dim], a copy)")
      .def_prop_ro("docs", [](const hr::Embeddings& e) { return ToNumpy(e.docs, {e.n_nodes(), e.dim}); },
                   nb::rv_policy::move, "the document table (float32 numpy array [n_nodes, dim], a copy)");
  nb::class_<hr::RecallTable>(hr, "RecallTable", "Recall of (query, ancestor) pairs by distance.")
      .def("recall", &hr::RecallTable::Recall, "distance"_a)
      .def_prop_ro("overall", &hr::RecallTable::Overall)
      .def_prop_ro("per_query", &hr::RecallTable::PerQuery)
      .def_ro("hits", &hr::RecallTable::hits)
      .def_ro("total", &hr::RecallTable::total)
      .def_ro("n_queries", &hr::RecallTable::n_queries);
  nb::class_<hr::RecallReport>(hr, "RecallReport", "Recall on the held-out test pairs and on all pairs.")
      .def_ro("test", &hr::RecallReport::test)
      .def_ro("all", &hr::RecallReport::all);
  nb::class_<hr::EpochReport>(hr, "EpochReport", "Passed to train_embeddings's on_epoch after every epoch.")
      .def_ro("phase", &hr::EpochReport::phase)
      .def_ro("epoch", &hr::EpochReport::epoch)
      .def_ro("loss", &hr::EpochReport::loss)
      .def_ro("validation_recall", &hr::EpochReport::validation_recall)
      .def_ro("seconds", &hr::EpochReport::seconds);
  nb::class_<hr::TrainedEmbeddings>(hr, "TrainedEmbeddings", "Both recipes' embeddings and their recall.")
      .def_ro("standard", &hr::TrainedEmbeddings::standard)
      .def_ro("finetuned", &hr::TrainedEmbeddings::finetuned)
      .def_ro("best_pretrain_epoch", &hr::TrainedEmbeddings::best_pretrain_epoch)
      .def_ro("best_finetune_epoch", &hr::TrainedEmbeddings::best_finetune_epoch)
      .def_ro("standard_recall", &hr::TrainedEmbeddings::standard_recall)
      .def_ro("finetuned_recall", &hr::TrainedEmbeddings::finetuned_recall)
      .def_prop_ro("has_finetuned", &hr::TrainedEmbeddings::has_finetuned)
      .def_prop_ro("final", [](const hr::TrainedEmbeddings& t) { return t.final(); },
                   "the recipe's result: finetuned, or standard without finetuning");
  hr.def("train_embeddings", [](const hr::Dataset& data, size_t dim, size_t batch, size_t negatives,
                                std::string_view softmax, size_t epochs, float lr, float scale, size_t finetune_epochs,
                                float finetune_lr, float finetune_scale, size_t finetune_min_distance, bool mask,
                                bool finetune_mask, size_t validation_queries, uint64_t seed, nb::object on_epoch) {
    hr::TrainOptions o{.dim = dim, .batch = batch, .negatives = negatives,
                       .softmax = Unwrap(hr::ParseSoftmax(std::string(softmax))), .epochs = epochs, .lr = lr,
                       .scale = scale, .finetune_epochs = finetune_epochs, .finetune_lr = finetune_lr,
                       .finetune_scale = finetune_scale, .finetune_min_distance = finetune_min_distance,
                       .mask_false_negatives = mask, .finetune_mask_false_negatives = finetune_mask,
                       .validation_queries = validation_queries, .seed = seed};
    std::optional<nb::python_error> callback_error;
    auto callback = GuardedCallback<const hr::EpochReport&>(on_epoch, &callback_error);
    return Unwrap(WithoutGil([&] { return hr::TrainEmbeddings(data, o, callback); }, &callback_error));
  }, "data"_a, nb::kw_only(), "dim"_a = 64, "batch"_a = 1024, "negatives"_a = 1024, "softmax"_a = "in-batch",
     "epochs"_a = 20, "lr"_a = 0.01f, "scale"_a = 40.0f, "finetune_epochs"_a = 30, "finetune_lr"_a = 0.001f,
     "finetune_scale"_a = 50.0f, "finetune_min_distance"_a = 4, "mask"_a = false, "finetune_mask"_a = true,
     "validation_queries"_a = 3000, "seed"_a = 1, "on_epoch"_a.none() = nb::none(),
     "Pretrains (and finetunes) lookup-table embeddings with the pretrain-finetune recipe; the GIL is released.");
  hr.def("evaluate_embeddings", [](const hr::Dataset& data, const hr::Embeddings& e, std::string factory, size_t nprobe,
                                   size_t ef_search) {
    const hr::SearchIndex index{.factory = std::move(factory), .nprobe = nprobe, .ef_search = ef_search};
    return Unwrap(WithoutGil([&] { return hr::EvaluateEmbeddings(data, e, index); }));
  }, "data"_a, "embeddings"_a, nb::kw_only(), "factory"_a = "Flat", "nprobe"_a = 0, "ef_search"_a = 0,
     "Recall of the embeddings searched through a FAISS index (Flat: exact).");
  hr.def("check_storable", [](const std::string& dir, const hr::Dataset& data) {
    Check(WithoutGil([&] { return hr::CheckStorable(dir, data); }));
  }, "dir"_a, "data"_a, "Raises what would make store_hierarchy fail, before any training.");
  hr.def("store_hierarchy", [](const std::string& dir, const hr::Dataset& data, const hr::Embeddings& e) {
    Check(WithoutGil([&] { return hr::StoreHierarchy(dir, data, e); }));
  }, "dir"_a, "data"_a, "embeddings"_a,
     "Writes the nodes and embeddings as a collection, replacing DIR whole in one rename.");
  hr.def("load_embeddings", [](const PyCollection& p, const hr::Dataset& data) {
    auto c = p.c();
    return Unwrap(WithoutGil([&] { return hr::LoadEmbeddings(*c, data); }));
  }, "collection"_a, "data"_a, "The embeddings store_hierarchy stored, in the dataset's node order.");
  hr.def("search_node", [](const PyCollection& p, std::string_view node, size_t k) {
    auto c = p.c();
    auto found = Unwrap(WithoutGil([&] { return hr::SearchNode(*c, node, k); }));
    return std::make_tuple(found.node, found.label, PyHits{std::move(found.hits)});
  }, "collection"_a, "node"_a, "k"_a = 10,
     "A node's nearest documents by its query embedding: (node, label, hits). `node` is a node name, or\n"
     "words whose best BM25 match among the nodes is taken.");
}

NB_MODULE(_quarry, m) {
  m.doc() = "Quarry's C++ engine (import quarry, not this module).";
  m.attr("__version__") = QUARRY_VERSION;  // project(quarry VERSION ...) in CMakeLists.txt
  MakeErrorClasses(m);
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const StatusError& e) {
      RaiseStatus(e.status);
    }
  });

  nb::class_<Document>(m, "Document", "A stored document: id, title, text and metadata (compact JSON text, or '').")
      .def(nb::init<>())
      .def("__init__", [](Document* d, std::string id, std::string title, std::string text, std::string metadata) {
        new (d) Document{std::move(id), std::move(title), std::move(text), std::move(metadata)};
      }, "id"_a, "title"_a = "", "text"_a = "", "metadata"_a = "")
      .def_rw("id", &Document::id)
      .def_rw("title", &Document::title)
      .def_rw("text", &Document::text)
      .def_rw("metadata", &Document::metadata)
      .def("__eq__", [](const Document& a, const Document& b) { return a == b; })
      .def("__repr__", [](const Document& d) {
        return "Document(id=" + Repr(d.id) + ", title=" + Repr(d.title) + ", ...)";
      });

  nb::class_<HitStages>(m, "HitStages", "What each pipeline stage made of a hit; NaN where a stage did not score it.")
      .def_ro("bm25", &HitStages::bm25, "BM25 score (NaN: not retrieved by BM25)")
      .def_ro("dense", &HitStages::dense, "inner product or negated squared L2 (NaN: not retrieved densely)")
      .def_ro("resmem_base", &HitStages::resmem_base, "calibrated BM25 probability (NaN: no ResMem)")
      .def_ro("resmem_correction", &HitStages::resmem_correction, "ResMem's lambda * sum w r")
      .def_ro("rerank", &HitStages::rerank, "BlockRank score (NaN: not reranked)");

  nb::class_<SearchHit>(m, "Hit", "One search result.")
      .def_ro("id", &SearchHit::id, "the document's id")
      .def_ro("score", &SearchHit::score, "the final score (BM25, dense, fused, or ResMem's corrected probability)")
      .def_ro("stages", &SearchHit::stages, "per-stage scores")
      .def_ro("doc", &SearchHit::doc, "internal document number")
      .def_ro("title", &SearchHit::title, "filled when hydrate=True")
      .def_ro("text", &SearchHit::text, "filled when hydrate=True")
      .def_ro("snippet", &SearchHit::snippet, "a window of the text around the first query-term match (hydrate)")
      .def_ro("highlights", &SearchHit::highlights, "(start, end) byte spans of query terms in `snippet`")
      .def("__repr__", [](const SearchHit& h) {
        return "Hit(id=" + Repr(h.id) + ", score=" + Repr(h.score) + ")";
      });

  nb::class_<PyHits>(m, "Hits", "One query's hits, best first: a sequence of Hit, with ids, scores and docs whole.")
      .def("__len__", [](const PyHits& h) { return h.hits.size(); })
      .def("__bool__", [](const PyHits& h) { return !h.hits.empty(); })
      .def("__getitem__", [](const PyHits& h, Py_ssize_t i) -> const SearchHit& {
        const auto n = static_cast<Py_ssize_t>(h.hits.size());
        if (i < 0) i += n;
        if (i < 0 || i >= n) throw nb::index_error("hit index out of range");
        return h.hits[static_cast<size_t>(i)];
      }, nb::rv_policy::reference_internal, "i"_a)
      .def("__getitem__", [](const PyHits& h, const nb::slice& slice) {
        auto [start, stop, step, n] = slice.compute(h.hits.size());
        PyHits out;
        for (size_t i = 0; i < n; ++i) out.hits.push_back(h.hits[static_cast<size_t>(start + static_cast<Py_ssize_t>(i) * step)]);
        return out;
      }, "slice"_a)
      .def("__iter__", [](const PyHits& h) {
        return nb::make_iterator(nb::type<PyHits>(), "HitIterator", h.hits.begin(), h.hits.end());
      }, nb::keep_alive<0, 1>())
      .def_prop_ro("ids", [](const PyHits& h) {
        std::vector<std::string> ids;
        ids.reserve(h.hits.size());
        for (const auto& hit : h.hits) ids.push_back(hit.id);
        return ids;
      }, nb::rv_policy::move, "the hits' document ids, in rank order")
      .def_prop_ro("scores", [](const PyHits& h) {
        std::vector<float> scores;
        scores.reserve(h.hits.size());
        for (const auto& hit : h.hits) scores.push_back(hit.score);
        return ToNumpy(std::move(scores), {h.hits.size()});
      }, nb::rv_policy::move, "the hits' final scores (float32 numpy array), in rank order")
      .def_prop_ro("docs", [](const PyHits& h) {
        std::vector<uint32_t> docs;
        docs.reserve(h.hits.size());
        for (const auto& hit : h.hits) docs.push_back(hit.doc);
        return ToNumpy(std::move(docs), {h.hits.size()});
      }, nb::rv_policy::move, "the hits' internal document numbers (uint32 numpy array)")
      .def("__repr__", [](const PyHits& h) {
        std::string s = "Hits([";
        for (size_t i = 0; i < h.hits.size() && i < 3; ++i) s += (i ? ", " : "") + Repr(h.hits[i].id);
        return s + (h.hits.size() > 3 ? ", ...] of " + std::to_string(h.hits.size()) + ")" : "])");
      });

  nb::class_<IngestReport>(m, "IngestReport", "What an ingest did.")
      .def_ro("n_read", &IngestReport::n_read, "valid documents read")
      .def_ro("n_added", &IngestReport::n_added, "new ids")
      .def_ro("n_replaced", &IngestReport::n_replaced, "ids that existed (upserts)")
      .def_ro("n_skipped", &IngestReport::n_skipped, "bad lines skipped (skip_invalid)")
      .def_ro("n_batches", &IngestReport::n_batches)
      .def_ro("n_lines", &IngestReport::n_lines, "input lines consumed")
      .def_ro("seconds", &IngestReport::seconds)
      .def("__repr__", [](const IngestReport& r) {
        return "IngestReport(n_read=" + std::to_string(r.n_read) + ", n_added=" + std::to_string(r.n_added) +
               ", n_replaced=" + std::to_string(r.n_replaced) + ", n_skipped=" + std::to_string(r.n_skipped) + ")";
      });

  nb::class_<IngestBatchInfo>(m, "IngestBatch", "Passed to ingest_file's progress callback after each committed batch.")
      .def_ro("batch_index", &IngestBatchInfo::batch_index)
      .def_ro("n_docs", &IngestBatchInfo::n_docs)
      .def_ro("total_docs", &IngestBatchInfo::total_docs)
      .def_ro("last_line", &IngestBatchInfo::last_line);

  nb::class_<CheckReport>(m, "CheckReport", "What Collection.check found; `problems` is empty when all agrees.")
      .def_ro("n_docs", &CheckReport::n_docs)
      .def_ro("n_ids", &CheckReport::n_ids)
      .def_ro("n_indexed", &CheckReport::n_indexed)
      .def_ro("n_segments", &CheckReport::n_segments)
      .def_ro("n_postings", &CheckReport::n_postings)
      .def_ro("n_vectors", &CheckReport::n_vectors)
      .def_ro("problems", &CheckReport::problems)
      .def_prop_ro("ok", &CheckReport::ok);

  nb::class_<DenseTuning>(m, "DenseTuning", "What tune_dense_index chose.")
      .def_ro("knob", &DenseTuning::knob)
      .def_ro("chosen", &DenseTuning::chosen)
      .def_ro("recall", &DenseTuning::recall)
      .def_ro("recall_low", &DenseTuning::recall_low)
      .def_ro("reached", &DenseTuning::reached)
      .def_ro("tried", &DenseTuning::tried);

  nb::class_<PyEvaluation>(m, "Evaluation", "Metrics of a run: `mean[name]`, `per_query[name][qid]`.")
      .def_ro("metrics", &PyEvaluation::metrics, "metric names, as printed ('nDCG@10', ...), in the order asked")
      .def_ro("mean", &PyEvaluation::mean, "metric name -> mean over the qrels' queries")
      .def_ro("per_query", &PyEvaluation::per_query, "metric name -> qid -> value")
      .def_ro("qids", &PyEvaluation::qids, "the evaluated queries (those of the qrels)")
      .def("__repr__", [](const PyEvaluation& e) {
        std::string s = "Evaluation(";
        for (size_t i = 0; i < e.metrics.size(); ++i) {
          s += (i ? ", " : "") + e.metrics[i] + "=" + Repr(e.mean.at(e.metrics[i]));
        }
        return s + ")";
      });

  m.def("load_qrels", [](const std::string& path) { return Unwrap(eval::LoadQrels(path)); }, "path"_a,
        "Reads BEIR qrels TSV or TREC qrels: {qid: {docid: grade}}.");
  m.def("load_run", [](const std::string& path) { return FromRun(Unwrap(eval::LoadRun(path))); }, "path"_a,
        "Reads a TREC run: {qid: [(docid, score), ...]} in file order.");
  m.def("load_queries", [](const std::string& path) {
    std::vector<std::pair<std::string, std::string>> out;
    for (auto& q : Unwrap(eval::LoadQueries(path))) out.emplace_back(std::move(q.id), std::move(q.text));
    return out;
  }, "path"_a, "Reads BEIR queries.jsonl or a qid<TAB>text file: [(qid, text), ...].");
  m.def("_write_run", [](const std::string& path, const PyRun& run, const std::string& tag, bool sort) {
    eval::Run r = ToRun(run);
    if (sort) eval::SortRun(&r);
    Check(eval::WriteRun(path, r, tag));
  }, "path"_a, "run"_a, "tag"_a, "sort"_a);
  m.def("_evaluate", &Evaluate, "qrels"_a, "run"_a, "metrics"_a, "ignore_self"_a, "relevance_level"_a);

  nb::class_<PyCollection>(m, "_Collection")
      .def(nb::init<const std::string&, bool, bool>(), "dir"_a, "create"_a, "read_only"_a)
      .def("close", &PyCollection::Close)
      .def_prop_ro("dir", [](const PyCollection& p) {
        auto c = p.c(); return c->dir(); })
      .def("upsert", [](PyCollection& p, const Tuples& docs) {
        auto c = p.c();
        std::vector<Document> batch;
        batch.reserve(docs.size());
        for (const auto& [id, title, text, metadata] : docs) batch.push_back({id, title, text, metadata});
        Check(WithoutGil([&] { return c->Upsert(batch); }));
      }, "docs"_a, "Adds or replaces (by id) [(id, title, text, metadata_json), ...] as one atomic batch.")
      .def("get", [](const PyCollection& p, std::string_view id) {
        auto c = p.c(); return Unwrap(c->Get(id)); }, "id"_a)
      .def("delete", [](PyCollection& p, std::string_view id) {
        auto c = p.c();
        return Unwrap(WithoutGil([&] { return c->Delete(id); }));
      }, "id"_a, "Deletes a document: True when it existed.")
      .def("ingest_file", [](PyCollection& p, const std::string& path, std::string_view format, std::string id_field,
                             std::string title_field, std::string text_field, std::string metadata_field,
                             uint64_t max_doc_bytes, uint64_t batch_docs, bool skip_invalid, std::string report_path,
                             bool sync, nb::object progress) {
        auto c = p.c();
        ReaderOptions reader{.format = ParseFormat(format), .id_field = std::move(id_field),
                             .title_field = std::move(title_field), .text_field = std::move(text_field),
                             .metadata_field = std::move(metadata_field), .max_doc_bytes = max_doc_bytes};
        std::optional<nb::python_error> callback_error;
        IngestOptions options{.batch_docs = batch_docs, .skip_invalid = skip_invalid,
                              .report_path = std::move(report_path), .sync = sync};
        options.on_batch = GuardedCallback<const IngestBatchInfo&>(progress, &callback_error);
        return Unwrap(WithoutGil([&] { return c->IngestFile(path, reader, options); }, &callback_error));
      }, "path"_a, "format"_a, "id_field"_a, "title_field"_a, "text_field"_a, "metadata_field"_a, "max_doc_bytes"_a,
         "batch_docs"_a, "skip_invalid"_a, "report_path"_a, "sync"_a, "progress"_a.none())
      .def("search", [](const PyCollection& p, std::string_view query, QUARRY_SEARCH_PARAMS) {
        auto c = p.c();
        const SearchOptions o = QUARRY_SEARCH_OPTIONS;
        return PyHits{Unwrap(WithoutGil([&] { return c->Search(query, o); }))};
      }, "query"_a, QUARRY_SEARCH_ARGS,
         "Top k hits for a query: mode 'bm25' | 'dense' | 'hybrid' (fusion 'rrf' | 'linear'), then rerank and\n"
         "resmem when asked; hydrate fills title, text and snippet.")
      .def("batch_search", [](const PyCollection& p, const std::vector<std::string>& queries, QUARRY_SEARCH_PARAMS,
                              size_t threads) {
        auto c = p.c();
        const SearchOptions o = QUARRY_SEARCH_OPTIONS;
        auto results = Unwrap(WithoutGil([&] {
          if (threads == 0) return c->SearchBatch(queries, o);
          tbb::task_arena arena(static_cast<int>(threads));
          return arena.execute([&] { return c->SearchBatch(queries, o); });
        }));
        std::vector<PyHits> out(results.size());
        for (size_t i = 0; i < results.size(); ++i) out[i].hits = std::move(results[i]);
        return out;
      }, "queries"_a, QUARRY_SEARCH_ARGS, "threads"_a = 0,
         "search() of every query on `threads` oneTBB threads (0: all cores), results in input order.")
      .def("search_vector", [](const PyCollection& p, const nb::ndarray<nb::ro, nb::device::cpu>& vector,
                               QUARRY_SEARCH_PARAMS) {
        auto c = p.c();
        size_t rows = 0, dim = 0;
        const std::vector<float> q = FloatsOf(vector, 1, "query vector", &rows, &dim);
        const SearchOptions o = QUARRY_SEARCH_OPTIONS;
        return PyHits{Unwrap(WithoutGil([&] { return c->SearchVector(q, o); }))};
      }, "vector"_a, QUARRY_SEARCH_ARGS, "Top k documents for an already embedded query vector (1-D).")
      .def("put_vectors", [](PyCollection& p, const std::vector<std::string>& ids,
                             const nb::ndarray<nb::ro, nb::device::cpu>& vectors, std::string_view table) {
        auto c = p.c();
        size_t rows = 0, dim = 0;
        const std::vector<float> v = FloatsOf(vectors, 2, "vectors", &rows, &dim);
        if (rows != ids.size()) {
          throw StatusError{Status::InvalidArgument("vectors: " + std::to_string(rows) + " rows for " +
                                                    std::to_string(ids.size()) + " ids")};
        }
        const VectorTable t = ParseTable(table);
        Check(WithoutGil([&] { return c->dense().PutVectors(ids, v, dim, t); }));
      }, "ids"_a, "vectors"_a, "table"_a = "documents",
         "Stores vectors [len(ids), dim] computed elsewhere ('documents' or 'queries' table) in one atomic batch.")
      .def("get_vector", [](const PyCollection& p, std::string_view id, std::string_view table) -> std::optional<FloatArray> {
        auto c = p.c();
        auto v = Unwrap(c->dense().GetVector(id, ParseTable(table)));
        if (!v) return std::nullopt;
        const size_t n = v->size();
        return ToNumpy(std::move(*v), {n});
      }, "id"_a, "table"_a = "documents", "The stored vector of a document (float32 array), or None.")
      .def("dense_scores", [](const PyCollection& p, std::string_view query, const std::vector<std::string>& ids) {
        auto c = p.c();
        auto s = Unwrap(WithoutGil([&] { return c->dense().Scores(query, ids); }));
        const size_t n = s.size();
        return ToNumpy(std::move(s), {n});
      }, "query"_a, "ids"_a, "Dense similarity of the query to each listed document (float32 array; NaN: no vector).")
      .def("build_dense_index", [](PyCollection& p, std::string factory, bool inner_product, std::string encoder,
                                   std::optional<std::string> query_prefix, std::optional<std::string> document_prefix,
                                   std::string pooling, std::optional<bool> normalize, size_t max_length, size_t nprobe,
                                   size_t ef_search, size_t train_sample, size_t max_unindexed, nb::object progress) {
        auto c = p.c();
        DenseIndexOptions o{.factory = std::move(factory), .inner_product = inner_product, .encoder = std::move(encoder),
                            .query_prefix = std::move(query_prefix), .document_prefix = std::move(document_prefix),
                            .pooling = std::move(pooling), .normalize = normalize, .max_length = max_length,
                            .nprobe = nprobe, .ef_search = ef_search, .train_sample = train_sample,
                            .max_unindexed = max_unindexed};
        std::optional<nb::python_error> callback_error;
        auto on_progress = GuardedCallback<uint64_t, uint64_t>(progress, &callback_error);
        return Unwrap(WithoutGil([&] { return c->dense().Build(o, on_progress); }, &callback_error));
      }, "factory"_a, "inner_product"_a, "encoder"_a, "query_prefix"_a.none(), "document_prefix"_a.none(),
         "pooling"_a, "normalize"_a.none(), "max_length"_a, "nprobe"_a, "ef_search"_a, "train_sample"_a,
         "max_unindexed"_a, "progress"_a.none())
      .def("dense_info", [](const PyCollection& p) {
        auto c = p.c();
        auto info = Unwrap(WithoutGil([&] { return c->dense().Info(); }));
        return DenseInfoDict(info);
      })
      .def("tune_dense_index", [](PyCollection& p, double target, size_t k, size_t n_queries) {
        auto c = p.c();
        return Unwrap(WithoutGil([&] { return c->dense().Tune(target, k, n_queries); }));
      }, "target"_a, "k"_a = 10, "n_queries"_a = 500,
         "Chooses the smallest nprobe/efSearch whose recall@k against exact search reaches `target`.")
      .def("set_dense_search_parameters", [](PyCollection& p, size_t nprobe, size_t ef_search) {
        auto c = p.c();
        Check(c->dense().SetSearchParameters(nprobe, ef_search));
      }, nb::kw_only(), "nprobe"_a = 0, "ef_search"_a = 0)
      .def("load_reranker", [](PyCollection& p, const std::string& model, QUARRY_RERANK_PARAMS) {
        auto c = p.c();
        const RerankOptions o = QUARRY_RERANK_OPTIONS;
        Check(WithoutGil([&] { return c->rerank().Load(model, o); }));
      }, "model"_a, QUARRY_RERANK_ARGS,
         "Loads a BlockRank reranker (a Mistral/Llama checkpoint directory or a GGUF file) for rerank=True.")
      .def_prop_ro("has_reranker", [](const PyCollection& p) {
        auto c = p.c(); return c->rerank().loaded(); })
      .def("rerank_scores", [](const PyCollection& p, std::string_view query, const std::vector<std::string>& ids) {
        auto c = p.c();
        auto s = Unwrap(WithoutGil([&] { return c->rerank().Scores(query, ids); }));
        const size_t n = s.size();
        return ToNumpy(std::move(s), {n});
      }, "query"_a, "ids"_a, "BlockRank scores of the listed documents for the query (float64 array).")
      .def("rerank_scores_at_layers", [](const PyCollection& p, std::string_view query, const std::vector<std::string>& ids,
                                         const std::vector<int>& layers) {
        auto c = p.c();
        auto s = Unwrap(WithoutGil([&] { return c->rerank().ScoresAtLayers(query, ids, layers); }));
        std::vector<double> flat;
        for (const auto& row : s) flat.insert(flat.end(), row.begin(), row.end());
        return ToNumpy(std::move(flat), {layers.size(), ids.size()});
      }, "query"_a, "ids"_a, "layers"_a,
         "BlockRank scores at each of `layers` (ascending, none deeper than the loaded scoring layer) from one "
         "pass: a float64 array [layers, ids].")
      .def("build_rerank_cache", [](PyCollection& p, const std::string& model, bool half_precision, nb::object progress,
                                    QUARRY_RERANK_PARAMS) {
        auto c = p.c();
        const RerankOptions o = QUARRY_RERANK_OPTIONS;
        std::optional<nb::python_error> callback_error;
        auto on_progress = GuardedCallback<uint64_t, uint64_t>(progress, &callback_error);
        return Unwrap(WithoutGil([&] { return c->rerank().BuildCache(model, o, half_precision, on_progress); },
                                 &callback_error));
      }, "model"_a, "half_precision"_a = false, "progress"_a.none() = nb::none(), QUARRY_RERANK_ARGS,
         "Encodes and stores every document's BlockRank block once (decoupled caches), calling progress(done, "
         "total) as it goes; returns the count.")
      .def("_build_resmem", [](PyCollection& p, const Training& training, size_t k, float sigma, float temperature,
                               float lambda, size_t depth, std::string_view neighbours) {
        auto c = p.c();
        const ResMemOptions o = MakeResMemOptions(k, sigma, temperature, lambda, depth, neighbours);
        const auto labeled = ToLabeled(training);
        Check(WithoutGil([&] { return c->resmem().Build(labeled, o); }));
      }, "training"_a, "k"_a, "sigma"_a, "temperature"_a, "lambda_"_a, "depth"_a, "neighbours"_a)
      .def("_tune_resmem", [](const PyCollection& p, const Training& training, double validation_fraction,
                              uint64_t seed, std::string_view neighbours) {
        auto c = p.c();
        const auto labeled = ToLabeled(training);
        const ResMemNeighbours n = ParseNeighbours(neighbours);
        const ResMemTuning t = Unwrap(WithoutGil([&] { return c->resmem().Tune(labeled, validation_fraction, seed, n); }));
        nb::dict d;
        nb::list rows;
        for (const auto& row : t.rows) {
          nb::dict r = ResMemOptionsDict(row.options);
          r["validation_ndcg10"] = row.validation_ndcg10;
          rows.append(r);
        }
        d["rows"] = rows;
        d["best"] = ResMemOptionsDict(t.best);
        d["best_ndcg10"] = t.best_ndcg10;
        d["baseline_ndcg10"] = t.baseline_ndcg10;
        d["n_memory"] = t.n_memory;
        d["n_validation"] = t.n_validation;
        return d;
      }, "training"_a, "validation_fraction"_a, "seed"_a, "neighbours"_a)
      .def("resmem_info", [](const PyCollection& p) {
        auto c = p.c();
        auto [options, n] = Unwrap(c->resmem().Info());
        nb::dict d = ResMemOptionsDict(options);
        d["n_queries"] = n;
        return d;
      })
      .def("_search_loop", [](const PyCollection& p, const std::vector<std::string>& queries, size_t k) {
        // For scripts/bench-python.sh: the same searches as a Python loop of search(q, k, hydrate=False), run
        // in C++ in this process with each result dropped, so the binding's own cost is measured in one process.
        auto c = p.c();
        const SearchOptions o{.k = k, .hydrate = false};
        Check(WithoutGil([&] {
          for (const auto& q : queries) QUARRY_RETURN_IF_ERROR(c->Search(q, o).status());
          return Status::Ok();
        }));
      }, "queries"_a, "k"_a)
      .def("preload", [](const PyCollection& p) {
        auto c = p.c(); Check(WithoutGil([&] { return c->Preload(); })); })
      .def("compact", [](PyCollection& p) {
        auto c = p.c(); return Unwrap(WithoutGil([&] { return c->Compact(); })); })
      .def("wait_for_merges", [](PyCollection& p) {
        auto c = p.c(); Check(WithoutGil([&] { return c->WaitForMerges(); })); })
      .def("stats", [](const PyCollection& p) {
        auto c = p.c(); return StatsDict(Unwrap(c->Stats())); })
      .def("check", [](const PyCollection& p, bool repair) {
        auto c = p.c();
        return Unwrap(WithoutGil([&] { return c->Check(repair); }));
      }, "repair"_a = false, "Verifies that documents, ids, segments and vectors agree; repair rebuilds damaged ones.");
  BindHierarchical(m);
}
