"""Domain labels: URL rules (known hosts, UT1 categories, academic suffixes) and the real
shipped fastText classifier, through DomainStage on Arrow batches."""

from __future__ import annotations

import pyarrow as pa
import pytest

from mixers.domains import DomainStage, load_ut1_domains, url_labels
from pipeline import schema as S
from pipeline.config import DomainsConfig, load_config

# A host on UT1's shopping list (lists/ut1/shopping/domains, line 100).
UT1_SHOPPING_HOST = "12gotrading.nl"

# An arXiv-style abstract written for this test (not in the training data), with no URL hint.
ABSTRACT = (
    "We present a novel framework for estimating the dark matter density profile of dwarf "
    "spheroidal galaxies from stellar kinematics. Our method combines Jeans modelling with "
    "a hierarchical Bayesian prior, and we validate it on mock data drawn from cosmological "
    "simulations. Applied to eight Milky Way satellites, the analysis favours cored "
    "profiles, in tension with predictions of cold dark matter. We discuss implications "
    "for self-interacting dark matter and baryonic feedback."
)
SHOP_PAGE = (
    "Leather wallet, brown, RFID blocking. Price: $39.95. Free shipping on orders over $50. "
    "In stock. Add to cart. Customer reviews 4.7 out of 5. Returns within 30 days."
)


def batch(urls, texts, langs, drop_reasons=None) -> pa.Table:
    n = len(urls)
    drop_reasons = drop_reasons or [None] * n
    return pa.table(
        {
            S.ID: [f"doc{i}" for i in range(n)],
            S.URL: pa.array(urls, pa.string()),
            S.TEXT: pa.array(texts, pa.large_string()),
            S.LANG: pa.array(langs, pa.string()),
            S.DROP_REASON: pa.array(drop_reasons, pa.string()),
            S.DROP_STAGE: pa.array([r and "earlier" for r in drop_reasons], pa.string()),
        }
    )


@pytest.fixture(scope="module")
def stage():
    return DomainStage(DomainsConfig())


def test_ut1_shopping_host_is_ecommerce(stage, shared_data):
    listed = (shared_data / "lists" / "ut1" / "shopping" / "domains").read_text().split()
    assert UT1_SHOPPING_HOST in listed
    out = stage(batch([f"https://www.{UT1_SHOPPING_HOST}/en/item/42"], ["Hello"], ["en"]))
    row = out.to_pylist()[0]
    assert row[S.DOMAIN] == "ecommerce"
    assert row[S.DOMAIN_SOURCE] == "url"
    assert row[S.DOMAIN_MATCH] == f"ut1:shopping:{UT1_SHOPPING_HOST}"
    assert row[S.DOMAIN_SCORE] == 1.0


def test_shipped_ut1_table_holds_every_mapped_category():
    hashes, codes, categories = load_ut1_domains()
    assert len(hashes) > 100_000 and (hashes[1:] > hashes[:-1]).all()  # sorted, unique
    assert set(codes.tolist()) == set(range(len(categories)))
    assert url_labels([f"http://{UT1_SHOPPING_HOST}/"])[0][0] == "ecommerce"


@pytest.mark.parametrize(
    ("url", "label"),
    [
        ("https://arxiv.org/abs/2401.00001", "science"),
        ("https://export.arxiv.org/abs/2401.00001", "science"),  # parents are matched
        ("https://en.wikipedia.org/wiki/Entropy", "reference"),
        ("https://math.stackexchange.com/questions/1", "technology"),
        ("https://github.com/owner/repo", "code"),
        ("http://www.cs.cmu.edu/~someone/", "academic_education"),
        ("https://www.phys.ox.ac.uk/research", "academic_education"),
        ("https://www.census.gov/data", "reference"),
        ("http://www.lemonde.fr/politique/", "news"),  # UT1 press, before liste_bu
        ("https://shop.example.invalid/", None),
        ("not a url at all", None),
        (None, None),
    ],
)
def test_url_rules(url, label):
    found = url_labels([url])[0]
    assert (found[0] if found else None) == label


def test_arxiv_like_abstract_is_science_by_the_classifier(stage):
    out = stage(
        batch(
            ["https://site.example.invalid/paper/17", "https://site.example.invalid/p/9"],
            [ABSTRACT, SHOP_PAGE],
            ["en", "en"],
        )
    ).to_pylist()
    assert out[0][S.DOMAIN] == "science"
    assert out[0][S.DOMAIN_SOURCE] == "classifier"
    assert out[0][S.DOMAIN_SCORE] >= DomainsConfig().min_score
    assert out[1][S.DOMAIN] == "ecommerce"
    assert out[0][S.DOMAIN_MATCH] is None


def test_other_languages_and_unsure_predictions_are_other(stage):
    out = stage(
        batch(
            ["https://x.example.invalid/a", "https://arxiv.org/abs/1", "https://y.invalid/"],
            [ABSTRACT, ABSTRACT, "ok"],
            ["fr", "fr", "en"],
        )
    ).to_pylist()
    # not a classifier language: URL rules only
    assert (out[0][S.DOMAIN], out[0][S.DOMAIN_SOURCE]) == ("other", "none")
    assert (out[1][S.DOMAIN], out[1][S.DOMAIN_SOURCE]) == ("science", "url")
    # min_score 1.0: nothing from the classifier is confident enough
    strict = DomainStage(DomainsConfig(min_score=1.0))
    row = strict(batch(["https://z.invalid/"], [SHOP_PAGE], ["en"])).to_pylist()[0]
    assert (row[S.DOMAIN], row[S.DOMAIN_SOURCE]) == ("other", "none")
    assert 0 < row[S.DOMAIN_SCORE] < 1.0


def test_dropped_rows_get_no_label(stage):
    out = stage(
        batch(
            ["https://arxiv.org/abs/1", "https://arxiv.org/abs/2"],
            [ABSTRACT, ABSTRACT],
            ["en", "en"],
            [None, "no_text"],
        )
    )
    assert out[S.DOMAIN].to_pylist() == ["science", None]
    assert out[S.DOMAIN_SCORE].to_pylist()[1] is None


def test_a_model_whose_labels_are_not_domains_fails_naming_the_key():
    """A real mistake: domains.model pointed at the quality classifier (labels hq, lq)."""
    from filters.classifier import DEFAULT_MODEL as QUALITY_MODEL

    with pytest.raises(ValueError, match=r"domains\.model: labels \['hq', 'lq'\] are not"):
        DomainStage(DomainsConfig(model=str(QUALITY_MODEL), url_rules=False))


def test_missing_model_fails_naming_the_key(tmp_path):
    with pytest.raises(FileNotFoundError, match="domains.model"):
        DomainStage(DomainsConfig(model=str(tmp_path / "nope.ftz")))


def test_config_mistakes_name_the_key():
    from pipeline.config import ConfigError

    with pytest.raises(ConfigError, match=r"rebalance\.weights: .*ecommerce"):
        load_config(None, ["rebalance.weights={sciense: 2.0}"])
    with pytest.raises(ConfigError, match=r"rebalance\.target_shares"):
        load_config(None, ["rebalance.target_shares={science: 0.8, code: 0.4}"])
    with pytest.raises(ConfigError, match=r"domains\.min_score"):
        load_config(None, ["domains.min_score=2"])
