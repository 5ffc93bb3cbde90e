"""Rebalancing: rates from token counts, hash-based keep/repeat decisions within
statistical tolerance, determinism, and the report."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from mixers.rebalance import Rebalancer, base_id, copies_for, derive_rates, uniform
from pipeline import schema as S
from pipeline.config import RebalanceConfig

N = 4000  # synthetic documents per domain


def ids(prefix: str, n: int = N) -> list[str]:
    return [f"<urn:uuid:{prefix}-{i:06d}>" for i in range(n)]


def within(observed: float, p: float, n: int, sigmas: float = 4.0) -> bool:
    """|observed - p| within `sigmas` binomial standard deviations of n draws."""
    return abs(observed - p) <= sigmas * math.sqrt(p * (1 - p) / n)


def test_uniform_draws_are_uniform_and_seeded():
    u = uniform(ids("a"), seed=0)
    assert ((u >= 0) & (u < 1)).all()
    # deciles each hold ~10% (4 sigma)
    counts = np.histogram(u, bins=10, range=(0, 1))[0]
    assert all(within(c / N, 0.1, N) for c in counts)
    assert (uniform(ids("a"), seed=0) == u).all()
    other = uniform(ids("a"), seed=1)
    assert not (other == u).all()
    assert abs(np.corrcoef(u, other)[0, 1]) < 0.1


def test_weights_0_3_and_2_0_keep_and_repeat_at_their_rates():
    rates = {"ecommerce": 0.3, "science": 2.0, "technology": 1.5}
    domains = ["ecommerce"] * N + ["science"] * N + ["technology"] * N + ["news"] * N
    all_ids = ids("e") + ids("s") + ids("t") + ids("n")
    copies = copies_for(domains, all_ids, rates, seed=0, max_repeats=4)
    shop, science, tech, news = np.split(copies, 4)
    assert set(shop.tolist()) == {0, 1}
    assert within(shop.mean(), 0.3, N)
    assert (science == 2).all()
    assert set(tech.tolist()) == {1, 2}
    assert within((tech == 2).mean(), 0.5, N)
    assert (news == 1).all()  # unlisted: rate 1


def test_max_repeats_caps_the_copies():
    copies = copies_for(["science"] * 100, ids("x", 100), {"science": 7.5}, 0, max_repeats=4)
    assert (copies == 4).all()


def test_decisions_are_deterministic_and_follow_the_seed():
    domains, all_ids = ["ecommerce"] * N, ids("d")
    a = copies_for(domains, all_ids, {"ecommerce": 0.3}, seed=7, max_repeats=4)
    b = copies_for(domains, all_ids, {"ecommerce": 0.3}, seed=7, max_repeats=4)
    c = copies_for(domains, all_ids, {"ecommerce": 0.3}, seed=8, max_repeats=4)
    assert (a == b).all()
    assert not (a == c).all()
    # a document's fate depends on its id only, not on its neighbours or batch
    single = copies_for(domains[5:6], all_ids[5:6], {"ecommerce": 0.3}, seed=7, max_repeats=4)
    assert single[0] == a[5]


def test_weight_rates_and_the_target_shares_they_imply():
    tokens = {"ecommerce": 600, "science": 100, "other": 300}
    rates, targets = derive_rates(RebalanceConfig(), tokens)
    assert rates == {"ecommerce": 0.3, "science": 2.0, "other": 1.0}
    weighted = 0.3 * 600 + 2.0 * 100 + 300
    assert targets["ecommerce"] == pytest.approx(180 / weighted)
    assert targets["science"] == pytest.approx(200 / weighted)
    assert sum(targets.values()) == pytest.approx(1.0)


def test_target_shares_give_those_shares_in_expectation():
    tokens = {"ecommerce": 600, "science": 100, "other": 300}
    cfg = RebalanceConfig(target_shares={"ecommerce": 0.2, "science": 0.2})
    rates, targets = derive_rates(cfg, tokens)
    out = {d: rates[d] * t for d, t in tokens.items()}
    total = sum(out.values())
    assert rates["other"] == 1.0
    assert out["ecommerce"] / total == pytest.approx(0.2)
    assert out["science"] / total == pytest.approx(0.2)
    assert targets == {"ecommerce": 0.2, "science": 0.2, "other": pytest.approx(0.6)}
    # a share out of reach is capped at max_repeats; the report shows what was reached
    far = derive_rates(RebalanceConfig(target_shares={"science": 0.9}), tokens)[0]
    assert far["science"] == 4.0


def test_rebalancer_drops_downsampled_rows_and_reports_shares():
    n = 3000
    doc_ids = ids("r", n)
    domains = (["ecommerce", "science", "other"] * n)[:n]
    table = pa.table(
        {
            S.ID: doc_ids,
            S.DOMAIN: domains,
            S.LANG: ["en"] * n,
            S.N_TOKENS: pa.array([10] * n, pa.int32()),
            S.DROP_REASON: pa.array([None] * (n - 1) + ["no_text"], pa.string()),
            S.DROP_STAGE: pa.array([None] * (n - 1) + ["extract"], pa.string()),
        }
    )
    alive = table.slice(0, n - 1)
    before = {d: {"docs": domains[: n - 1].count(d), "tokens": 10 * domains[: n - 1].count(d)}
              for d in ("ecommerce", "science", "other")}  # fmt: skip
    rates, targets = derive_rates(RebalanceConfig(), {d: c["tokens"] for d, c in before.items()})
    plan = {
        "seed": 0, "max_repeats": 4, "mode": "weights", "rates": rates,
        "target_shares": targets, "before": {"domains": before, "languages": {}},
    }  # fmt: skip
    rebalancer = Rebalancer(plan)
    out, copies = rebalancer.apply(table)
    reasons = out[S.DROP_REASON].to_pylist()
    assert reasons[-1] == "no_text" and copies[-1] == 0  # earlier reasons stay
    dropped = [r == S.Reason.DOMAIN_DOWNSAMPLED for r in reasons]
    assert all(d == (c == 0) for d, c in zip(dropped[:-1], copies[:-1], strict=True))
    assert all(domains[i] == "ecommerce" for i, d in enumerate(dropped) if d)
    assert set(out[S.DROP_STAGE].to_pylist()) == {None, "rebalance", "extract"}
    # write the survivors and their copies the way the runner does, then report
    kept = out.filter(pa.array([r is None for r in reasons]))
    rebalancer.count_written(kept, repeat=False)
    extra = alive.take(pa.array(np.flatnonzero(copies > 1), pa.int64()))
    rebalancer.count_written(extra, repeat=True)
    report = rebalancer.report()
    science = report["domains"]["science"]
    assert science["docs_after"] == 2 * science["docs_before"]
    assert report["repeat_docs"] == science["docs_before"]
    shop = report["domains"]["ecommerce"]
    assert within(shop["docs_after"] / shop["docs_before"], 0.3, shop["docs_before"])
    assert shop["achieved_share"] == pytest.approx(shop["target_share"], abs=0.03)
    assert sum(r["achieved_share"] for r in report["domains"].values()) == pytest.approx(1, 1e-4)


def test_repeat_ids_map_back_to_their_document():
    assert base_id("<urn:uuid:1>#r3") == "<urn:uuid:1>"
    assert base_id("<urn:uuid:1>") == "<urn:uuid:1>"
    assert base_id("page#results") == "page#results"
