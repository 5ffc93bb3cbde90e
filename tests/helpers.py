"""Small builders and checks shared by tests: Arrow batches in the pipeline's schemas, the
byte-for-byte comparison of two run directories (determinism, resume, cluster), and the
bench scripts loaded as modules (their own logic is tested too)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pyarrow as pa

from pipeline import schema as S


def doc_batch(texts: list[str | None], drop_reasons: list[str | None] | None = None) -> pa.Table:
    """A batch of documents holding only text; rows with a drop reason count as dropped
    by an "earlier" stage."""
    drop_reasons = drop_reasons or [None] * len(texts)
    return pa.table(
        {
            S.ID: [f"doc{i}" for i in range(len(texts))],
            S.TEXT: pa.array(texts, pa.large_string()),
            S.DROP_REASON: pa.array(drop_reasons, pa.string()),
            S.DROP_STAGE: pa.array([r and "earlier" for r in drop_reasons], pa.string()),
        }
    )


# --set overrides that switch off the text-quality rules (the URL filter stays on). For tests
# whose subject is not filtering and that want every real document of the sample (~300,
# against ~60 that pass the rules).
QUALITY_RULES_OFF = [
    f"filters.{name}.enabled=false"
    for name in ("gopher_repetition", "gopher_quality", "c4", "fineweb", "safety")
]

# --set override that switches off domain rebalancing (on by default, mixers/rebalance.py),
# for tests whose expected document counts are about other stages (dedup's kept == dropped
# duplicates): rebalancing drops some documents and repeats others.
REBALANCE_OFF = ["rebalance.enabled=false"]


def assert_same_output(out: Path, reference: Path) -> None:
    """Two run directories hold byte-identical data: manifest, stats, every shard and every
    rejected/ file, and no other shard or rejected file. timings.json is left out on purpose
    (seconds and which Ray node did what differ run to run)."""
    assert (out / "manifest.json").read_bytes() == (reference / "manifest.json").read_bytes()
    assert (out / "stats.json").read_bytes() == (reference / "stats.json").read_bytes()
    manifest = json.loads((reference / "manifest.json").read_text())
    files = [shard["file"] for shard in manifest["shards"]] + manifest["rejected"]["files"]
    for name in files:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    for directory in ("shards", "rejected"):
        assert sorted(p.name for p in (out / directory).iterdir()) == sorted(
            p.name for p in (reference / directory).iterdir()
        ), directory


REPO = Path(__file__).resolve().parents[1]


def load_bench_script(stem: str):
    """bench/<stem>.py (a script, not a package) as a module. Registered in sys.modules as
    crawlmill_bench_<stem>, since dataclasses look their module up by name."""
    name = f"crawlmill_bench_{stem}"
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{stem}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
