// libFuzzer targets for every parser of untrusted input, in one binary: QUARRY_FUZZ_TARGET picks the
// target (`quarry_fuzz -help=1` lists them). Built with clang's -fsanitize=fuzzer,address,undefined
// (QUARRY_BUILD_FUZZ); scripts/test.sh --sanitize runs each a few seconds on its seed corpus in
// tests/data/fuzz/<target>/, which also holds every input that ever crashed one (regressions).
//
// A target fails (aborts) on a crash, a sanitizer report, or a broken promise it checks itself
// (e.g. the ASCII tokenizer disagreeing with ICU's, a segment search disagreeing with exhaustive
// scoring). Parsers given files are fed through a file in /dev/shm (or $TMPDIR).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "common/json.h"
#include "quarry/eval.h"
#include "quarry/npy.h"
#include "index/hierarchical/hierarchy.h"
#include "index/lexical/analyzer.h"
#include "index/lexical/lexical_index.h"
#include "index/lexical/lexical_store.h"
#include "index/lexical/segment.h"
#include "model/config.h"
#include "model/safetensors.h"
#include "model/sentence_transformers.h"
#include "model/gguf.h"
#include "model/sp_tokenizer.h"
#include "model/tokenizer.h"
#include "model/wordpiece.h"
#include "rerank/blockrank.h"
#include "rerank/resmem.h"
#include "storage/document_codec.h"
#include "storage/document_reader.h"

namespace {

using namespace quarry;

[[noreturn]] void Broken(const std::string& what) {
  std::fprintf(stderr, "quarry_fuzz: broken promise: %s\n", what.c_str());
  std::abort();
}

// A scratch directory for targets that read files; `Write` replaces the named file's bytes.
const std::string& Scratch() {
  static const std::string dir = [] {
    const char* base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp");
    std::string tmpl = std::string(base) + "/quarry-fuzz-XXXXXX";
    if (!mkdtemp(tmpl.data())) std::abort();
    return tmpl;
  }();
  return dir;
}
std::string Write(const std::string& name, std::string_view bytes) {
  const std::string path = Scratch() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

void Documents(std::string_view bytes, InputFormat format) {
  ReaderOptions options;
  options.format = format;
  options.id_field = "docid";
  options.text_field = "body";
  options.max_doc_bytes = 1 << 16;
  auto reader = DocumentReader::Open(Write("corpus", bytes), options);
  if (!reader.ok()) return;
  Document doc;
  for (int i = 0; i < 10000; ++i) {
    auto next = (*reader)->Next(&doc);
    if (next.ok() && !*next) break;
    if (next.ok()) {
      // What the reader accepts, the document codec round-trips.
      Document back;
      if (!DecodeDocument(EncodeDocument(doc), &back).ok() || !(back == doc)) Broken("document codec round trip");
    }
  }
}

void Tokenizer(std::string_view bytes) {
  static auto analyzer = Analyzer::Create();
  if (!analyzer.ok()) std::abort();
  std::vector<std::pair<size_t, size_t>> fast, icu;
  (*analyzer)->Tokenize(bytes, &fast);
  (*analyzer)->TokenizeWithIcu(bytes, &icu);
  if (fast != icu) Broken("the ASCII tokenizer disagrees with ICU on '" + std::string(bytes) + "'");
  std::vector<std::string> terms;
  (*analyzer)->Analyze(bytes, &terms);
}

// A segment image, mutated: opening, term lookups, cursors and full verification never crash.
void SegmentBytes(std::string_view bytes) {
  auto segment = Segment::FromBuffer(std::string(bytes));
  if (!segment.ok()) return;
  const Segment& s = **segment;
  PostingsBlock block;
  for (uint32_t t = 0; t < s.n_terms() && t < 64; ++t) {
    const std::string term(s.TermAt(t));
    auto entry = s.Find(term);
    if (!entry) continue;
    auto cursor = Segment::Cursor::Open(s, *entry);
    if (!cursor.ok()) continue;
    for (uint32_t b = 0; b < cursor->n_blocks() && b < 64; ++b) {
      if (cursor->Decode(b, &block)) {
        for (uint32_t i = 0; i < block.n; ++i) (void)s.Norm(block.docs[i]);
      }
    }
  }
  for (uint64_t d = s.base(); d < s.end() && d < uint64_t{s.base()} + 256; ++d) (void)s.ExternalId(static_cast<DocNum>(d));
  (void)s.VerifyAll();
}

// Texts indexed in memory: block-max MaxScore returns exactly what exhaustive scoring returns.
void SearchTexts(std::string_view bytes) {
  std::vector<std::string> ids, texts;
  size_t start = 0;
  while (start <= bytes.size() && texts.size() < 200) {
    size_t end = bytes.find('\n', start);
    if (end == std::string_view::npos) end = bytes.size();
    texts.emplace_back(bytes.substr(start, end - start));
    ids.push_back("d" + std::to_string(texts.size()));
    start = end + 1;
  }
  auto index = LexicalIndex::Build(ids, texts);
  if (!index.ok()) return;
  static auto analyzer = Analyzer::Create();
  std::vector<std::string> query;
  (*analyzer)->Analyze(texts.front(), &query);
  for (size_t k : {1, 3, 10}) {
    auto pruned = (*index)->Search(query, k), full = (*index)->Search(query, k, /*exhaustive=*/true);
    if (!pruned.ok() || !full.ok()) Broken("an in-memory index failed its own checks");
    if (pruned->size() != full->size()) Broken("MaxScore returned another number of hits");
    for (size_t i = 0; i < pruned->size(); ++i) {
      if ((*pruned)[i].doc != (*full)[i].doc || (*pruned)[i].score != (*full)[i].score) Broken("MaxScore differs");
    }
  }
}

// A sentence-transformers directory: the input's NUL-separated parts become modules.json,
// 1_Pooling/config.json, sentence_bert_config.json and config_sentence_transformers.json (a missing part:
// no such file).
void SentenceTransformersDir(std::string_view bytes) {
  const char* names[] = {"modules.json", "1_Pooling/config.json", "sentence_bert_config.json",
                         "config_sentence_transformers.json"};
  const std::string dir = Scratch() + "/st";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir + "/1_Pooling");
  for (const char* name : names) {
    if (bytes.empty()) break;
    const size_t end = std::min(bytes.find('\0'), bytes.size());
    Write(std::string("st/") + name, bytes.substr(0, end));
    bytes.remove_prefix(std::min(end + 1, bytes.size()));
  }
  (void)model::LoadSentenceTransformerConfig(dir);
}

const std::map<std::string, std::function<void(std::string_view)>>& Targets() {
  static const std::map<std::string, std::function<void(std::string_view)>> targets = {
      {"beir", [](std::string_view b) { Documents(b, InputFormat::kBeir); }},
      {"msmarco", [](std::string_view b) { Documents(b, InputFormat::kMsMarco); }},
      {"jsonl", [](std::string_view b) { Documents(b, InputFormat::kJsonl); }},
      {"queries_jsonl", [](std::string_view b) { (void)eval::LoadQueries(Write("q.jsonl", b)); }},
      {"queries_tsv", [](std::string_view b) { (void)eval::LoadQueries(Write("q.tsv", b)); }},
      {"qrels", [](std::string_view b) { (void)eval::LoadQrels(Write("qrels.tsv", b)); }},
      {"run",
       [](std::string_view b) {
         auto run = eval::LoadRun(Write("run.trec", b));
         if (run.ok()) {
           eval::SortRun(&*run);
           if (!eval::WriteRun(Scratch() + "/out.trec", *run, "fuzz").ok()) return;
           auto again = eval::LoadRun(Scratch() + "/out.trec");
           if (!again.ok() || again->size() != run->size()) Broken("a run written and read back changed");
         }
       }},
      {"npy", [](std::string_view b) { (void)ReadNpy(Write("v.npy", b)); }},
      {"safetensors",
       [](std::string_view b) {
         std::filesystem::create_directories(Scratch() + "/st");
         Write("st/model.safetensors", b);
         auto c = model::Checkpoint::Open(Scratch() + "/st");
         if (c.ok()) {
           for (const auto& [name, t] : (*c)->tensors()) (void)(*c)->GetF32(name, t.shape);
         }
       }},
      {"config_json", [](std::string_view b) { (void)model::ParseConfig(std::string(b), "config.json"); }},
      {"sentence_transformers", SentenceTransformersDir},
      {"vocab",
       [](std::string_view b) {
         auto t = model::WordPieceTokenizer::Load(Write("vocab.txt", b));
         if (t.ok()) (void)(*t)->Encode("Hello, wörld! [CLS] unaffable 123", 64);
       }},
      {"gguf",
       [](std::string_view b) {
         const std::string path = Write("model.gguf", b);
         auto g = model::GgufFile::Open(path);
         if (!g.ok()) return;
         for (const auto& [name, t] : (*g)->tensors()) (void)(*g)->ToF32(t);
         (void)model::ConfigFromGguf(**g);
         auto t = model::LoadTokenizer(path);
         if (t.ok()) (void)(*t)->Decode((*t)->Encode("Hello <|im_start|> wörld 12345 🧬\n\n  x"));
       }},
      {"tokenizer_json",
       [](std::string_view b) {
         // Decoding what was encoded gives the text back, NFC-normalised (Qwen2's layout) or not.
         auto t = model::LoadTokenizer(Write("tokenizer.json", b));
         if (!t.ok()) return;
         for (const char* text : {"Hello <|im_start|> wörld 12345 🧬\n\n  x", "Cafe\u0301 don't", ""}) {
           const std::string decoded = (*t)->Decode((*t)->Encode(text));
           if (decoded.size() > 4 * std::strlen(text) + 64) Broken("tokenizer.json: decoding grew the text");
         }
       }},
      {"sp_model",
       [](std::string_view b) {
         auto t = model::SentencePieceTokenizer::Load(Write("tokenizer.model", b));
         if (t.ok()) (void)(*t)->Encode("Hello <s> world [INST]");
       }},
      {"edges", [](std::string_view b) {
         auto h = hr::LoadEdgeList(Write("edges.tsv", b));
         if (h.ok()) (void)hr::ComputeClosure(*h);
       }},
      {"wordnet", [](std::string_view b) {
         auto h = hr::LoadWordNetNouns(Write("data.noun", b));
         if (h.ok()) (void)hr::ComputeClosure(*h);
       }},
      {"json",
       [](std::string_view b) {
         auto j = ParseJson(b, "fuzz");
         if (j.ok()) (void)DumpJson(*j);
       }},
      {"analyzer", Tokenizer},
      {"segment", SegmentBytes},
      {"search", SearchTexts},
      {"manifest",
       [](std::string_view b) {
         std::vector<SegmentInfo> infos;
         if (DecodeManifest(b, &infos)) {
           std::vector<SegmentInfo> again;
           if (!DecodeManifest(EncodeManifest(infos), &again) || again.size() != infos.size()) Broken("manifest round trip");
         }
       }},
      {"document_record",
       [](std::string_view b) {
         Document d;
         (void)DecodeDocument(b, &d);
       }},
      {"block_cache", [](std::string_view b) { (void)DecodeBlockCache(b); }},
      {"resmem",
       [](std::string_view b) {
         // What decodes re-encodes (in the current version) to bytes that decode to the same encoding.
         auto m = ResMem::Decode(b);
         if (!m.ok()) return;
         const std::string again = (*m)->Encode();
         auto back = ResMem::Decode(again);
         if (!back.ok() || (*back)->Encode() != again) Broken("resmem re-encoding does not round-trip");
       }},
  };
  return targets;
}

const std::function<void(std::string_view)>* target = nullptr;

// Valid binary inputs for the targets whose structure random bytes would rarely hit, made by the
// writers themselves (seeds, not expected outputs): QUARRY_FUZZ_SEEDS=DIR writes DIR/<target>/seed-*.
void WriteSeeds(const std::string& dir) {
  auto put = [&](const std::string& target, int n, const std::string& bytes) {
    std::filesystem::create_directories(dir + "/" + target);
    std::ofstream(dir + "/" + target + "/seed-" + std::to_string(n), std::ios::binary) << bytes;
  };
  for (int n = 0; n < 3; ++n) {
    SegmentWriter w(static_cast<DocNum>(n * 1000), 300, Bm25Params{}, 10.0f);
    std::map<std::string, std::vector<std::pair<DocNum, uint32_t>>> postings;
    for (uint32_t d = 0; d < 300; d += 1 + n) {
      w.SetDocument(n * 1000 + d, "doc" + std::to_string(d), IntToByte4(1 + d % 20));
      postings["common"].emplace_back(n * 1000 + d, 1 + d % 3);
      if (d % 7 == 0) postings["rare" + std::to_string(d % 3)].emplace_back(n * 1000 + d, 2);
    }
    for (const auto& [term, list] : postings) (void)w.AddTerm(term, list);
    put("segment", n, w.FinishBuffer());
    put("manifest", n, EncodeManifest({{1, 0, 100, 4096, 77}, {2, 100, static_cast<uint32_t>(50 * n + 1), 999, 5}}));
    put("document_record", n, EncodeDocument({"id" + std::to_string(n), "title", std::string(n * 10, 'x'), n ? "{\"a\":1}" : ""}));
    BlockCache cache;
    cache.n_tokens = 2;
    cache.k.assign(n + 1, std::vector<float>(4, 0.5f));
    cache.v.assign(n, std::vector<float>(4, -1.0f));
    put("block_cache", n, EncodeBlockCache(cache, n % 2 ? CacheDType::kF16 : CacheDType::kF32));
    const bool dense = n == 2;  // one memory with dense neighbours (embeddings of dimension 2)
    auto memory = ResMem::Create(
        {{"q1", "statin therapy", {{"d1", 0.5}, {"d2", -0.25}}, dense ? std::vector<float>{0.6f, 0.8f} : std::vector<float>{}},
         {"q2", "liver", {}, dense ? std::vector<float>{1, 0} : std::vector<float>{}}},
        {.k = 1u + n, .neighbours = dense ? ResMemNeighbours::kDense : ResMemNeighbours::kBm25}, dense ? "{}" : "");
    if (memory.ok()) put("resmem", n, (*memory)->Encode());
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, " + std::to_string(n + 1) + "), }";
    while ((10 + header.size() + 1) % 64) header += ' ';
    header += '\n';
    std::string npy("\x93NUMPY\x01\x00", 8);
    npy += static_cast<char>(header.size());
    npy += '\0';
    npy += header + std::string(8 * (n + 1), '\0');
    put("npy", n, npy);
    const std::string st_header = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2," + std::to_string(n + 1) +
                                  "],\"data_offsets\":[0," + std::to_string(8 * (n + 1)) + "]}}";
    std::string st(8, '\0');
    for (int i = 0; i < 8; ++i) st[i] = static_cast<char>((st_header.size() >> (8 * i)) & 0xff);
    put("safetensors", n, st + st_header + std::string(8 * (n + 1), '\0'));
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* seeds = std::getenv("QUARRY_FUZZ_SEEDS")) {
    WriteSeeds(seeds);
    std::exit(0);
  }
  const char* name = std::getenv("QUARRY_FUZZ_TARGET");
  auto it = name ? Targets().find(name) : Targets().end();
  if (it == Targets().end()) {
    std::fprintf(stderr, "quarry_fuzz: set QUARRY_FUZZ_TARGET to one of:");
    for (const auto& [n, f] : Targets()) std::fprintf(stderr, " %s", n.c_str());
    std::fprintf(stderr, "\n");
    std::exit(2);
  }
  target = &it->second;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (*target)(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
