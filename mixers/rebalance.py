"""Domain rebalancing: down- and up-sample documents to target token shares, deterministically.

The Qwen2.5 report (Yang et al. 2024, section 3.1) downsamples the over-represented web
domains (e-commerce, social media, entertainment) and upsamples the high-value ones
(technology, science, academic research). dolma and datatrove can only drop at a fixed
rate; here a barrier measures the corpus first and derives one *rate* per domain:

- `rebalance.weights` (default): rate = weight (a token multiplier), capped at
  `max_repeats`. The target share it implies is w_d T_d / sum(w T).
- `rebalance.target_shares`: listed domains get their share s_d of the output tokens,
  unlisted domains keep rate 1 and take the rest: with U = their tokens and S = sum(s),
  the output has N = U / (1 - S) tokens (N = all tokens when every domain is listed), so
  rate_d = s_d N / T_d, capped at `max_repeats` (the report shows what was reached).

**The barrier** (`rebalance_phase`, after dedup): reads only the columns it needs of every
part, applies dedup's drops, counts documents and tokens per domain and per language
over the surviving documents, derives the rates and writes
`_work/rebalance/rates.json` (atomic; a rerun that finds it skips the barrier).

**The write phase** applies the rates row by row (`Rebalancer`), from a hash, never from
RNG state: u = blake2b(seed:id) / 2**64 in [0, 1), and a document gets
copies = floor(rate) + (1 if u < rate - floor(rate) else 0), at most `max_repeats`.
0 copies: `drop_reason = domain_downsampled` (stage "rebalance", in rejected/). Copy k >= 1
is written with id `<id>#r<k>` in the k-th extra pass over the parts, after every
original: copies of one document are a whole pass apart, in later shards, and never
adjacent (a pass that would start with the document the previous pass ended with starts
with its next one instead; only a run where no other document is repeated can put two
copies side by side). The same input, config and seed give the same copies.

Accounting stays exact: records read == (documents written - repeats) + rejected rows.
The report (per domain and language: documents and tokens before and after, target share,
achieved share) goes to `rebalance.json` in the run directory and stats.json["rebalance"].
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import schema as S
from pipeline.config import DOMAIN_LABELS, RebalanceConfig
from pipeline.io import atomic_path, read_parquet
from pipeline.stage import mark_dropped

REBALANCE_DIR = "rebalance"
RATES_FILE = "rates.json"
REPORT_FILE = "rebalance.json"
STAGE = "rebalance"
REPEAT_SEPARATOR = "#r"  # repeat k of document X has id X#r<k>
COUNT_COLUMNS = [S.ID, S.LANG, S.N_TOKENS, S.DOMAIN, S.DROP_REASON, S.DROP_STAGE]
UNLABELLED = "other"  # an alive row without a domain (labelling off) counts here


# --- rates --------------------------------------------------------------------------------------


def derive_rates(cfg: RebalanceConfig, tokens: dict[str, int]) -> tuple[dict, dict]:
    """(rate, target share) per domain present, from its token count (module docstring)."""
    total = sum(tokens.values())
    present = [d for d in DOMAIN_LABELS if tokens.get(d, 0) > 0]
    if cfg.target_shares:
        shares = cfg.target_shares
        unlisted = sum(tokens[d] for d in present if d not in shares)
        listed_share = sum(shares.values())
        out_tokens = unlisted / (1 - listed_share) if unlisted and listed_share < 1 else total
        # every share asked for is 1 in total: the unlisted domains get none of the output
        unlisted_rate = 0.0 if listed_share >= 1 - 1e-9 else 1.0
        raw = {
            d: (shares[d] * out_tokens / tokens[d] if d in shares else unlisted_rate)
            for d in present
        }
    else:
        raw = {d: cfg.weights.get(d, 1.0) for d in present}
    rates = {d: min(float(r), float(cfg.max_repeats)) for d, r in raw.items()}
    weighted = sum(raw[d] * tokens[d] for d in present)
    targets = {d: (raw[d] * tokens[d] / weighted if weighted else 0.0) for d in present}
    if cfg.target_shares:  # the share asked for, also for domains with no tokens at all
        targets = {d: cfg.target_shares.get(d, targets.get(d, 0.0)) for d in present}
        targets.update({d: s for d, s in cfg.target_shares.items() if d not in targets})
    return rates, targets


def uniform(ids: list[str], seed: int) -> np.ndarray:
    """A number in [0, 1) per document id, from blake2b(seed:id): the sampling draw."""
    out = np.empty(len(ids), np.float64)
    for i, doc_id in enumerate(ids):
        digest = hashlib.blake2b(f"{seed}:{doc_id}".encode(), digest_size=8).digest()
        out[i] = int.from_bytes(digest, "big") / 2**64
    return out


def copies_for(
    domains: list[str | None], ids: list[str], rates: dict, seed: int, max_repeats: int
) -> np.ndarray:
    """Copies of each document to write (0 = downsampled): floor(rate) + 1 more by hash."""
    rate = np.array([rates.get(d or UNLABELLED, 1.0) for d in domains], np.float64)
    whole = np.floor(rate)
    extra = uniform(ids, seed) < (rate - whole)
    return np.minimum(whole.astype(np.int64) + extra, max_repeats)


# --- the barrier --------------------------------------------------------------------------------


def _counts_of(docs: pa.Table, group: str) -> dict[str, Counter]:
    out: dict[str, Counter] = {}
    values = docs[group].to_pylist()
    tokens = docs[S.N_TOKENS].to_pylist()
    for value, n in zip(values, tokens, strict=True):
        counts = out.setdefault(value or UNLABELLED, Counter())
        counts["docs"] += 1
        counts["tokens"] += n or 0
    return out


def _merge(into: dict[str, Counter], more: dict[str, Counter]) -> None:
    for key, counts in more.items():
        into.setdefault(key, Counter()).update(counts)


def count_kept(parts: list[tuple[int, int, Path]], decisions_for) -> tuple[dict, dict]:
    """(per domain, per language) docs and tokens of the rows alive after dedup.
    `decisions_for(docs, file_index, chunk_index)` applies dedup's drops to a part."""
    by_domain: dict[str, Counter] = {}
    by_lang: dict[str, Counter] = {}
    for file_index, chunk_index, path in parts:
        docs = read_parquet(path, columns=COUNT_COLUMNS)
        docs = decisions_for(docs, file_index, chunk_index)
        kept = docs.filter(pc.is_null(docs[S.DROP_REASON]))
        _merge(by_domain, _counts_of(kept, S.DOMAIN))
        _merge(by_lang, _counts_of(kept, S.LANG))
    return by_domain, by_lang


def rebalance_phase(
    cfg, work_dir: str | Path, parts: list[tuple[int, int, Path]], decisions_for, log=print
) -> dict | None:
    """The mix barrier: count, derive rates, write rates.json. None when rebalancing is off;
    a rerun that finds rates.json returns it without counting again."""
    if not cfg.rebalance.enabled:
        return None
    out = Path(work_dir) / REBALANCE_DIR
    rates_file = out / RATES_FILE
    if rates_file.exists():
        return json.loads(rates_file.read_text())
    by_domain, by_lang = count_kept(parts, decisions_for)
    tokens = {d: c["tokens"] for d, c in by_domain.items()}
    rates, targets = derive_rates(cfg.rebalance, tokens)
    plan = {
        "seed": cfg.seed,
        "max_repeats": cfg.rebalance.max_repeats,
        "mode": "target_shares" if cfg.rebalance.target_shares else "weights",
        "rates": rates,
        "target_shares": targets,
        "before": {
            "domains": {d: dict(c) for d, c in sorted(by_domain.items())},
            "languages": {lang: dict(c) for lang, c in sorted(by_lang.items())},
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(rates_file) as tmp:
        Path(tmp).write_text(json.dumps(plan, indent=1, sort_keys=True))
    log(
        "  rebalance: rates "
        + ", ".join(f"{d} {r:g}" for d, r in sorted(rates.items()) if r != 1.0)
    )
    return plan


# --- the write phase ------------------------------------------------------------------------------


class Rebalancer:
    """Applies a rates plan to parts as the write phase reads them, and keeps the figures
    of what was written for the report."""

    def __init__(self, plan: dict):
        self.plan = plan
        self.rates = plan["rates"]
        self.seed = plan["seed"]
        self.max_repeats = plan["max_repeats"]
        self.after_domains: dict[str, Counter] = {}
        self.after_languages: dict[str, Counter] = {}
        self.repeats = 0
        self.downsampled = 0

    def apply(self, docs: pa.Table) -> tuple[pa.Table, np.ndarray]:
        """The part with downsampled rows dropped, and the copies of every row (0 for rows
        not written)."""
        alive = pc.is_null(docs[S.DROP_REASON]).to_numpy(zero_copy_only=False)
        copies = np.zeros(docs.num_rows, np.int64)
        rows = np.flatnonzero(alive)
        if len(rows):
            taken = docs.take(pa.array(rows, pa.int64()))
            copies[rows] = copies_for(
                taken[S.DOMAIN].to_pylist(),
                taken[S.ID].to_pylist(),
                self.rates,
                self.seed,
                self.max_repeats,
            )
        dropped = alive & (copies == 0)
        self.downsampled += int(dropped.sum())
        docs = mark_dropped(docs, pa.array(dropped), S.Reason.DOMAIN_DOWNSAMPLED, STAGE)
        return docs, copies

    def count_written(self, table: pa.Table, repeat: bool) -> None:
        _merge(self.after_domains, _counts_of(table, S.DOMAIN))
        _merge(self.after_languages, _counts_of(table, S.LANG))
        if repeat:
            self.repeats += table.num_rows

    def report(self) -> dict:
        before = self.plan["before"]

        def table(before_counts: dict, after_counts: dict, targets: dict | None) -> dict:
            total_before = sum(c["tokens"] for c in before_counts.values()) or 1
            total_after = sum(c["tokens"] for c in after_counts.values()) or 1
            keys = sorted(set(before_counts) | set(after_counts) | set(targets or {}))
            rows = {}
            for key in keys:
                b = before_counts.get(key, {})
                a = after_counts.get(key, {})
                row = {
                    "docs_before": b.get("docs", 0),
                    "tokens_before": b.get("tokens", 0),
                    "docs_after": a.get("docs", 0),
                    "tokens_after": a.get("tokens", 0),
                    "share_before": round(b.get("tokens", 0) / total_before, 6),
                    "achieved_share": round(a.get("tokens", 0) / total_after, 6),
                }
                if targets is not None:
                    row["rate"] = self.rates.get(key, 1.0)
                    row["target_share"] = round(targets.get(key, 0.0), 6)
                rows[key] = row
            return rows

        return {
            "mode": self.plan["mode"],
            "seed": self.seed,
            "max_repeats": self.max_repeats,
            "downsampled_docs": self.downsampled,
            "repeat_docs": self.repeats,
            "domains": table(before["domains"], self.after_domains, self.plan["target_shares"]),
            "languages": table(before["languages"], self.after_languages, None),
        }


def repeat_ids(ids: pa.ChunkedArray | pa.Array, k: int) -> pa.Array:
    return pc.binary_join_element_wise(ids, pa.scalar(f"{REPEAT_SEPARATOR}{k}"), "")


def base_id(doc_id: str) -> str:
    head, sep, tail = doc_id.rpartition(REPEAT_SEPARATOR)
    return head if sep and tail.isdigit() else doc_id


def format_report(report: dict, top: int = 13) -> str:
    """The per-domain table the CLI prints."""
    lines = [
        f"rebalance: {report['mode']}, {report['downsampled_docs']:,} docs downsampled, "
        f"{report['repeat_docs']:,} repeats written",
        f"           {'domain':<19}{'rate':>6}{'docs':>9}{'->':>3}{'docs':>8}"
        f"{'tokens':>13}{'->':>3}{'tokens':>12}{'share':>8}{'target':>8}{'got':>8}",
    ]
    rows = sorted(report["domains"].items(), key=lambda kv: -kv[1]["tokens_before"])
    for name, r in rows[:top]:
        lines.append(
            f"           {name:<19}{r['rate']:>6.2f}{r['docs_before']:>9,}{'':>3}"
            f"{r['docs_after']:>8,}{r['tokens_before']:>13,}{'':>3}{r['tokens_after']:>12,}"
            f"{r['share_before']:>8.1%}{r['target_share']:>8.1%}{r['achieved_share']:>8.1%}"
        )
    return "\n".join(lines)


def check_config(cfg) -> str | None:
    """A cross-key mistake, as a ConfigError message, or None."""
    if cfg.rebalance.enabled and not cfg.domains.enabled:
        return "rebalance.enabled: needs domains.enabled (rebalancing acts on domain labels)"
    if cfg.rebalance.target_shares and math.isclose(sum(cfg.rebalance.target_shares.values()), 0):
        return "rebalance.target_shares: the shares sum to 0"
    return None
