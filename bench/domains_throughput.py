"""Measure DomainStage on real pages: documents per second per core, URL rules alone and
URL rules + classifier, and the share of each label source.

    python bench/domains_throughput.py [--shared ../shared/data] [--repeat 3]

The pages are the main texts (resiliparse) of ../shared/data's realpages + WARC samples,
English and not, as the stage sees them in a run; one process, batches of 64 rows.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from filters.langid import LangIdStage  # noqa: E402
from mixers.domains import DomainStage  # noqa: E402
from mixers.train_domain import real_pages  # noqa: E402
from pipeline import schema as S  # noqa: E402
from pipeline.config import Config, DomainsConfig  # noqa: E402


def batches(pages: list[dict], langs: list[str], size: int = 64) -> list[pa.Table]:
    out = []
    for start in range(0, len(pages), size):
        chunk = pages[start : start + size]
        n = len(chunk)
        out.append(
            pa.table(
                {
                    S.ID: [p["id"] for p in chunk],
                    S.URL: [p["url"] for p in chunk],
                    S.TEXT: pa.array([p["text"] for p in chunk], pa.large_string()),
                    S.LANG: langs[start : start + size],
                    S.DROP_REASON: pa.nulls(n, pa.string()),
                    S.DROP_STAGE: pa.nulls(n, pa.string()),
                }
            )
        )
    return out


def measure(stage: DomainStage, tables: list[pa.Table], repeat: int) -> tuple[float, Counter]:
    best = float("inf")
    sources: Counter = Counter()
    for _ in range(repeat):
        start = time.process_time()
        outputs = [stage(t) for t in tables]
        best = min(best, time.process_time() - start)
    for out in outputs:
        sources.update(out[S.DOMAIN_SOURCE].to_pylist())
    return best, sources


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not args.shared.is_dir():
        print(f"{args.shared}: not found", file=sys.stderr)
        return 2
    pages = real_pages(args.shared)
    langs, _ = LangIdStage(Config().langid).predict([p["text"] for p in pages])
    tables = batches(pages, langs)
    print(f"{len(pages)} pages, load average {os.getloadavg()[0]:.1f}")
    for name, cfg in (
        ("URL rules only", DomainsConfig(classifier=False)),
        ("URL rules + classifier", DomainsConfig()),
    ):
        seconds, sources = measure(DomainStage(cfg), tables, args.repeat)
        print(
            f"{name:<24} {len(pages) / seconds:>9,.0f} docs/s per core (CPU time, best of "
            f"{args.repeat}); sources {dict(sorted(sources.items()))}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
