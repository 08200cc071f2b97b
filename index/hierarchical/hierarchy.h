// A hierarchy (a DAG of "is-a" edges) for hierarchical retrieval: every node is a query and a document,
// and the relevant documents of a query are the node itself and all its ancestors.
//
// Loading reports bad input as errors naming file and line. Objects are plain values: safe to read from
// many threads, not to mutate concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "quarry/status.h"

namespace quarry::hr {

using NodeId = uint32_t;

struct Hierarchy {
  std::vector<std::string> keys;     // unique node names (WordNet: "n" + 8-digit synset offset)
  std::vector<std::string> labels;   // readable names (WordNet: lemmas joined by ", "); may be empty strings
  std::vector<std::string> glosses;  // WordNet definitions; empty for edge lists
  std::vector<std::vector<NodeId>> parents;

  size_t size() const { return keys.size(); }
};

// Lines "child<TAB>parent"; '#' starts a comment line; nodes are created on first mention. A node
// without parents is a root. Errors: unreadable file, a line without exactly two non-empty fields, or a
// self-loop (file:line).
Result<Hierarchy> LoadEdgeList(const std::string& path);

// WordNet 3.x data.noun (the Debian package wordnet-base installs /usr/share/wordnet/data.noun): one node
// per synset, parents from its hypernym ("@") and instance-hypernym ("@i") pointers. Errors name the
// file and line of a malformed record or of a pointer to a synset the file lacks.
Result<Hierarchy> LoadWordNetNouns(const std::string& path);  // (kDefaultWordNetNouns: quarry/hierarchical.h)

// The reflexive-transitive closure: for each node, (ancestor, distance) for itself (distance 0) and every
// ancestor, where distance is the shortest number of edges up; sorted by ancestor id. Error: a cycle.
struct Closure {
  std::vector<std::vector<std::pair<NodeId, uint8_t>>> ancestors;

  bool IsRelevant(NodeId query, NodeId doc) const;  // doc is query or one of its ancestors
  size_t n_pairs() const;
  uint8_t max_distance() const;
};
Result<Closure> ComputeClosure(const Hierarchy& h);

// (query, relevant document) pairs split into train / validation / test, as in WordNet link prediction
// (Nickel & Kiela 2017; Ganea et al. 2018): the self pair (q, q) and the direct edges (distance 1, the
// transitive reduction) are always in train, so every held-out pair is implied by training pairs; each
// other pair goes to validation or test with the given probabilities, drawn by a generator seeded with
// `seed` over pairs in (query, ancestor id) order, so a split is reproducible from its arguments.
struct Pair {
  NodeId query, doc;
  uint8_t distance;
};
struct Split {
  std::vector<Pair> train, validation, test;
};
Split SplitPairs(const Closure& closure, double validation_fraction, double test_fraction, uint64_t seed);

// A synthetic complete tree (tests and demos): `branching` children per node, `height` levels below the
// root; node keys "t<level>_<index>".
Hierarchy CompleteTree(size_t height, size_t branching);

}  // namespace quarry::hr
