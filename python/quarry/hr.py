"""Hierarchical retrieval (You et al. 2025): embeddings of a hierarchy's nodes such that a node's nearest
documents are itself and its ancestors; the pretrain-finetune recipe; stored hierarchies.

    from quarry import hr
    data = hr.Dataset.load(edges="edges.tsv")                  # or WordNet's nouns: hr.Dataset.load()
    hr.check_storable("tree", data)                             # before minutes of training
    trained = hr.train_embeddings(data, dim=64, on_epoch=print)
    print(trained.finetuned_recall.all.overall)
    hr.store_hierarchy("tree", data, trained.final)
    with quarry.Collection("tree", read_only=True) as c:
        node, label, hits = hr.search_node(c, "dog", k=8)

A thin shell over include/quarry/hierarchical.h; errors are QuarryError subclasses.
"""

from ._quarry.hr import (
    Dataset,
    Embeddings,
    EpochReport,
    RecallReport,
    RecallTable,
    TrainedEmbeddings,
    check_storable,
    evaluate_embeddings,
    load_embeddings,
    search_node,
    store_hierarchy,
    train_embeddings,
)

__all__ = [
    "Dataset", "Embeddings", "EpochReport", "RecallReport", "RecallTable", "TrainedEmbeddings", "check_storable",
    "evaluate_embeddings", "load_embeddings", "search_node", "store_hierarchy", "train_embeddings",
]
