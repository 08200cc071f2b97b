"""Fixtures of the Python suite (scripts/test.sh runs it with PYTHONPATH=build/python).

Data in ../shared (datasets, fixtures) is used where present; a test that needs something absent skips
with a message naming it.
"""

import json
import os
from pathlib import Path

import pytest

import quarry

SOURCE = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("QUARRY_SHARED", SOURCE.parent / "shared"))

# Small documents whose BM25 order is easy to reason about (ids t0..t5).
TINY_DOCS = [
    {"id": "t0", "title": "Statins", "text": "Statins lower cholesterol in patients with heart disease.",
     "metadata": {"year": 2001}},
    {"id": "t1", "title": "", "text": "Cholesterol transport in the liver and the heart."},
    {"id": "t2", "title": "Muscle", "text": "The heart is a muscle that pumps blood."},
    {"id": "t3", "title": "", "text": "Aspirin and the risk of stroke in older adults."},
    {"id": "t4", "title": "Diet", "text": "A diet low in saturated fat lowers blood cholesterol."},
    {"id": "t5", "title": "", "text": "Exercise improves heart health and lowers blood pressure."},
]


def shared(relative: str) -> Path:
    """The path under ../shared, or a skip naming it."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"needs {path} (../shared/{relative})")
    return path


def fetched_model(name: str) -> Path:
    """A model scripts/models.sh fetched (under $QUARRY_MODELS, default ~/.cache/quarry/models), or a skip."""
    path = Path(os.environ.get("QUARRY_MODELS", Path.home() / ".cache/quarry/models")) / name
    if not path.exists():
        pytest.skip(f"needs {path} (scripts/models.sh {name})")
    return path


@pytest.fixture
def tiny(tmp_path):
    c = quarry.Collection(str(tmp_path / "tiny"), create=True)
    c.ingest(TINY_DOCS)
    yield c
    c.close()


@pytest.fixture(scope="session")
def scifact_dir(tmp_path_factory):
    """A collection of BEIR SciFact (5,183 documents), built once per session; yields (path, dataset dir)."""
    data = shared("datasets/scifact")
    path = tmp_path_factory.mktemp("scifact") / "c"
    with quarry.Collection(str(path), create=True) as c:
        c.ingest_file(str(data / "corpus.jsonl"))
    return path, data


@pytest.fixture(scope="session")
def scifact_test_queries(scifact_dir):
    _, data = scifact_dir
    qrels = quarry.load_qrels(str(data / "qrels" / "test.tsv"))
    queries = [(q, text) for q, text in quarry.load_queries(str(data / "queries.jsonl")) if q in qrels]
    return queries, qrels


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
