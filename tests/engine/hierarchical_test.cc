// The public hierarchical-retrieval pipeline (include/quarry/hierarchical.h): load, train, store, read
// back, search; and the errors a caller meets on collections that hold no hierarchy.
#include "quarry/hierarchical.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>

#include "tests/test_util.h"

namespace quarry {
namespace {

// A complete binary tree of height 4 (31 nodes) as an edge list; node n's parent is (n - 1) / 2.
std::string WriteTree(const testing::TempDir& tmp) {
  std::string edges;
  for (int node = 1; node < 31; ++node) edges += "n" + std::to_string(node) + "\tn" + std::to_string((node - 1) / 2) + "\n";
  testing::WriteFile(tmp / "edges.tsv", edges);
  return tmp / "edges.tsv";
}

TEST(HierarchicalPipeline, TrainStoreLoadAndSearchThroughTheLibrary) {
  testing::TempDir tmp;
  auto data = hr::Dataset::Load({.edges = WriteTree(tmp), .validation_fraction = 0, .test_fraction = 0.2});
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->n_nodes(), 31u);
  EXPECT_EQ(data->max_distance(), 4);
  // Each node with itself and each of its ancestors, counted up the tree.
  size_t pairs = 0;
  for (int node = 0; node < 31; ++node) {
    for (int n = node;; n = (n - 1) / 2) {
      ++pairs;
      if (n == 0) break;
    }
  }
  EXPECT_EQ(data->n_pairs(), pairs);
  EXPECT_EQ(data->n_train() + data->n_validation() + data->n_test(), pairs);

  auto trained = hr::TrainEmbeddings(*data, {.dim = 16, .batch = 32, .negatives = 32, .epochs = 40,
                                             .finetune_epochs = 0, .mask_false_negatives = true});
  ASSERT_TRUE(trained.ok()) << trained.status().ToString();
  EXPECT_FALSE(trained->has_finetuned());
  EXPECT_EQ(&trained->final(), &trained->standard);
  EXPECT_GE(trained->standard_recall.all.Overall(), 0.9);

  const std::string dir = tmp / "hr";
  ASSERT_TRUE(hr::CheckStorable(dir, *data).ok());
  ASSERT_TRUE(hr::StoreHierarchy(dir, *data, trained->final()).ok());
  {
    auto c = Collection::Open(dir, {.read_only = true});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    auto loaded = hr::LoadEmbeddings(**c, *data);
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    EXPECT_EQ(loaded->dim, 16u);
    EXPECT_EQ(loaded->docs, trained->standard.docs) << "stored exactly";
    EXPECT_EQ(loaded->queries, trained->standard.queries);
    // Through a FAISS Flat index, the same recall as training's exact search.
    auto recall = hr::EvaluateEmbeddings(*data, *loaded);
    ASSERT_TRUE(recall.ok());
    EXPECT_DOUBLE_EQ(recall->all.Overall(), trained->standard_recall.all.Overall());

    auto found = hr::SearchNode(**c, "n30", 5);
    ASSERT_TRUE(found.ok()) << found.status().ToString();
    EXPECT_EQ(found->node, "n30");
    ASSERT_EQ(found->hits.size(), 5u);
    EXPECT_EQ(hr::SearchNode(**c, "n30", 0).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(hr::SearchNode(**c, "zebra", 3).status().code(), StatusCode::kNotFound) << "no node matches";
  }
  // Embeddings of another shape are refused before anything is written.
  hr::Embeddings wrong = trained->standard;
  wrong.docs.resize(wrong.docs.size() - wrong.dim);
  wrong.queries.resize(wrong.queries.size() - wrong.dim);
  EXPECT_EQ(hr::StoreHierarchy(dir, *data, wrong).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(hr::EvaluateEmbeddings(*data, wrong).status().code(), StatusCode::kInvalidArgument);
}

// An ordinary collection is no hierarchy: searching a node or loading embeddings says so, and storing
// a hierarchy into it is refused (it would replace the documents).
TEST(HierarchicalPipeline, ACollectionWithoutAHierarchyIsAClearError) {
  testing::TempDir tmp;
  const std::string dir = tmp / "plain";
  {
    auto c = Collection::Open(dir, {.create_if_missing = true});
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE((*c)->Upsert({{"d1", "", "statins lower cholesterol", ""}, {"n0", "", "a root", ""}}).ok());
  }
  auto data = hr::Dataset::Load({.edges = WriteTree(tmp)});
  ASSERT_TRUE(data.ok());
  auto c = Collection::Open(dir, {.read_only = true});
  ASSERT_TRUE(c.ok());
  auto found = hr::SearchNode(**c, "statins", 3);
  EXPECT_EQ(found.status().code(), StatusCode::kFailedPrecondition) << found.status().ToString();
  EXPECT_NE(found.status().message().find("holds no hierarchy"), std::string::npos) << found.status().message();
  auto loaded = hr::LoadEmbeddings(**c, *data);
  EXPECT_EQ(loaded.status().code(), StatusCode::kFailedPrecondition) << loaded.status().ToString();
  EXPECT_EQ(hr::CheckStorable(dir, *data).code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace quarry
