#include "index/hierarchical/hierarchy.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <random>
#include <sstream>
#include <unordered_map>

namespace quarry::hr {

namespace {

// Interns node names in order of first mention.
class NodeTable {
 public:
  explicit NodeTable(Hierarchy* h) : h_(h) {}
  NodeId Intern(const std::string& key) {
    auto [it, added] = ids_.emplace(key, static_cast<NodeId>(h_->keys.size()));
    if (added) {
      h_->keys.push_back(key);
      h_->labels.emplace_back();
      h_->glosses.emplace_back();
      h_->parents.emplace_back();
    }
    return it->second;
  }
  const NodeId* Find(const std::string& key) const {
    auto it = ids_.find(key);
    return it == ids_.end() ? nullptr : &it->second;
  }

 private:
  Hierarchy* h_;
  std::unordered_map<std::string, NodeId> ids_;
};

Status LineError(const std::string& path, size_t line, const std::string& what) {
  return Status::InvalidArgument(path + ":" + std::to_string(line) + ": " + what);
}

void AddParent(Hierarchy* h, NodeId child, NodeId parent) {
  auto& p = h->parents[child];
  if (std::find(p.begin(), p.end(), parent) == p.end()) p.push_back(parent);
}

}  // namespace

Result<Hierarchy> LoadEdgeList(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound(path + ": cannot open edge list");
  Hierarchy h;
  NodeTable table(&h);
  std::string line;
  for (size_t n_line = 1; std::getline(in, line); ++n_line) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    const size_t tab = line.find('\t');
    if (tab == std::string::npos || line.find('\t', tab + 1) != std::string::npos) {
      return LineError(path, n_line, "expected child<TAB>parent");
    }
    const std::string child = line.substr(0, tab), parent = line.substr(tab + 1);
    if (child.empty() || parent.empty()) return LineError(path, n_line, "empty node name");
    if (child == parent) return LineError(path, n_line, "node '" + child + "' is its own parent");
    const NodeId c = table.Intern(child);
    const NodeId p = table.Intern(parent);
    AddParent(&h, c, p);
  }
  if (in.bad()) return Status::IOError(path + ": read error");
  if (h.size() == 0) return Status::InvalidArgument(path + ": no edges");
  return h;
}

Result<Hierarchy> LoadWordNetNouns(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return Status::NotFound(path + ": cannot open WordNet data.noun (Debian package wordnet-base)");
  }
  struct Record {
    std::vector<std::string> parents;
    size_t line;
  };
  Hierarchy h;
  NodeTable table(&h);
  std::vector<Record> records;
  std::string line;
  for (size_t n_line = 1; std::getline(in, line); ++n_line) {
    if (line.empty() || line[0] == ' ') continue;  // the licence header lines start with two spaces
    const size_t bar = line.find(" | ");
    std::istringstream fields(line.substr(0, bar));
    std::string offset, lex_file, ss_type, w_cnt_hex;
    if (!(fields >> offset >> lex_file >> ss_type >> w_cnt_hex) || offset.size() != 8 || ss_type != "n") {
      return LineError(path, n_line, "not a noun synset record");
    }
    unsigned w_cnt = 0;
    if (std::from_chars(w_cnt_hex.data(), w_cnt_hex.data() + w_cnt_hex.size(), w_cnt, 16).ec != std::errc() ||
        w_cnt == 0) {
      return LineError(path, n_line, "bad word count '" + w_cnt_hex + "'");
    }
    const NodeId id = table.Intern("n" + offset);
    if (!h.labels[id].empty()) return LineError(path, n_line, "synset " + offset + " appears twice");
    std::string label;
    for (unsigned i = 0; i < w_cnt; ++i) {
      std::string word, lex_id;
      if (!(fields >> word >> lex_id)) return LineError(path, n_line, "truncated word list");
      std::replace(word.begin(), word.end(), '_', ' ');
      if (!label.empty()) label += ", ";
      label += word;
    }
    h.labels[id] = label;
    if (bar != std::string::npos) {
      std::string gloss = line.substr(bar + 3);
      while (!gloss.empty() && gloss.back() == ' ') gloss.pop_back();
      h.glosses[id] = gloss;
    }
    unsigned p_cnt = 0;
    if (!(fields >> p_cnt)) return LineError(path, n_line, "missing pointer count");
    Record r{{}, n_line};
    for (unsigned i = 0; i < p_cnt; ++i) {
      std::string symbol, target, pos, source_target;
      if (!(fields >> symbol >> target >> pos >> source_target)) return LineError(path, n_line, "truncated pointer list");
      if ((symbol == "@" || symbol == "@i") && pos == "n") r.parents.push_back("n" + target);
    }
    records.push_back(std::move(r));  // records[id]: only record offsets are interned while reading
  }
  if (in.bad()) return Status::IOError(path + ": read error");
  if (h.size() == 0) return Status::InvalidArgument(path + ": no synsets");
  // Parents are resolved after reading so pointers may refer forward.
  for (NodeId id = 0; id < h.size(); ++id) {
    for (const auto& key : records[id].parents) {
      const NodeId* parent = table.Find(key);
      if (!parent || h.labels[*parent].empty()) {
        return LineError(path, records[id].line, "hypernym " + key.substr(1) + " is not a synset of this file");
      }
      if (*parent == id) return LineError(path, records[id].line, "synset is its own hypernym");
      AddParent(&h, id, *parent);
    }
  }
  return h;
}

bool Closure::IsRelevant(NodeId query, NodeId doc) const {
  const auto& a = ancestors[query];
  auto it = std::lower_bound(a.begin(), a.end(), doc, [](const auto& e, NodeId d) { return e.first < d; });
  return it != a.end() && it->first == doc;
}

size_t Closure::n_pairs() const {
  size_t n = 0;
  for (const auto& a : ancestors) n += a.size();
  return n;
}

uint8_t Closure::max_distance() const {
  uint8_t m = 0;
  for (const auto& a : ancestors) {
    for (const auto& [node, d] : a) m = std::max(m, d);
  }
  return m;
}

Result<Closure> ComputeClosure(const Hierarchy& h) {
  Closure c;
  c.ancestors.resize(h.size());
  // Breadth-first upwards from each node gives shortest distances; `seen` is stamped per source.
  std::vector<NodeId> seen(h.size(), UINT32_MAX);
  std::vector<std::pair<NodeId, uint8_t>> frontier;
  for (NodeId q = 0; q < h.size(); ++q) {
    auto& out = c.ancestors[q];
    out.push_back({q, 0});
    seen[q] = q;
    for (size_t head = 0; head < out.size(); ++head) {
      const auto [node, d] = out[head];
      for (NodeId p : h.parents[node]) {
        if (p == q) return Status::InvalidArgument("hierarchy: cycle through node '" + h.keys[q] + "'");
        if (seen[p] == q) continue;
        if (d == UINT8_MAX) return Status::InvalidArgument("hierarchy: deeper than 255 levels at '" + h.keys[q] + "'");
        seen[p] = q;
        out.push_back({p, static_cast<uint8_t>(d + 1)});
      }
    }
    std::sort(out.begin(), out.end());
  }
  return c;
}

Split SplitPairs(const Closure& closure, double validation_fraction, double test_fraction, uint64_t seed) {
  Split s;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (NodeId q = 0; q < closure.ancestors.size(); ++q) {
    for (const auto& [doc, d] : closure.ancestors[q]) {
      const Pair p{q, doc, d};
      if (d <= 1) {
        s.train.push_back(p);
        continue;
      }
      const double x = u(rng);
      if (x < test_fraction) {
        s.test.push_back(p);
      } else if (x < test_fraction + validation_fraction) {
        s.validation.push_back(p);
      } else {
        s.train.push_back(p);
      }
    }
  }
  return s;
}

Hierarchy CompleteTree(size_t height, size_t branching) {
  Hierarchy h;
  NodeTable table(&h);
  std::vector<NodeId> level{table.Intern("t0_0")};
  for (size_t depth = 1; depth <= height; ++depth) {
    std::vector<NodeId> next;
    for (NodeId parent : level) {
      for (size_t b = 0; b < branching; ++b) {
        const NodeId child = table.Intern("t" + std::to_string(depth) + "_" + std::to_string(next.size()));
        AddParent(&h, child, parent);
        next.push_back(child);
      }
    }
    level = std::move(next);
  }
  return h;
}

}  // namespace quarry::hr
