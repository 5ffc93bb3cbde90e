"""Domain labels: one of a fixed taxonomy per document, from its URL first, else its text.

The Qwen2.5 report (Yang et al. 2024, section 3.1) rebalances web data by domain:
e-commerce, social media and entertainment down, technology, science and academic
research up. That needs a label per document; this stage writes it (`domain`,
`domain_score`, `domain_source`, `domain_match`), mixers/rebalance.py acts on it.

Signals, in order (docs/DOMAINS.md has the taxonomy and the figures):

1. **URL rules** (`domain_source = "url"`, score 1.0). The host and each parent domain,
   most specific first, are looked up in
   - `KNOWN_HOSTS`: hand-picked hosts whose domain is not in doubt (arxiv.org -> science,
     wikipedia.org -> reference, stackoverflow.com -> technology, github.com -> code ...);
   - the UT1 category lists (Universite Toulouse 1, CC BY-SA 4.0): 29 categories mapped to
     labels by `UT1_CATEGORIES` (shopping -> ecommerce, forums -> social_forum, press ->
     news ...), 137 k domains shipped as sorted 56-bit hashes + category codes in
     `mixers/data/ut1_domains.npz` (`python -m mixers.domains build-ut1 DIR`);
   then `suffix_rule`: academic and government suffixes (.edu, .ac.uk, .edu.au, .gov ...).
2. **fastText classifier** (`domain_source = "classifier"`): for documents in
   `domains.languages` (English for the shipped model, `mixers/data/domain_en.ftz`,
   recipe in mixers/train_domain.py) whose URL matched no rule. The top label wins if its
   probability is >= `domains.min_score`, else the document is `other` (source "none").
   The model sees the text as filters/classifier.py's quality model does, plus a few
   lexical cue tokens (`cue_tokens`: prices and "add to cart", citations and "et al.",
   equations, code).
3. Otherwise `other` with source "none".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from filters.classifier import LABEL_PREFIX, load_shipped_or_file, model_input
from filters.urls import domain_and_parents, hash_keys, parse_host
from pipeline import schema as S
from pipeline.config import DOMAIN_LABELS, DomainsConfig
from pipeline.stage import alive_mask, set_column

DATA = Path(__file__).resolve().parent / "data"
UT1_DOMAINS = DATA / "ut1_domains.npz"
DEFAULT_MODEL = DATA / "domain_en.ftz"
OTHER = "other"

# Hosts (and their subdomains) whose domain label is not in doubt. Checked before UT1.
KNOWN_HOSTS: dict[str, str] = {
    # science
    "arxiv.org": "science",
    "biorxiv.org": "science",
    "medrxiv.org": "health",
    "nature.com": "science",
    "science.org": "science",
    "sciencemag.org": "science",
    "sciencedirect.com": "science",
    "springer.com": "science",
    "link.springer.com": "science",
    "wiley.com": "science",
    "plos.org": "science",
    "aps.org": "science",
    "iop.org": "science",
    "acs.org": "science",
    "nasa.gov": "science",
    "noaa.gov": "science",
    "sciencedaily.com": "science",
    "phys.org": "science",
    "newscientist.com": "science",
    "scientificamerican.com": "science",
    "researchgate.net": "science",
    "semanticscholar.org": "science",
    "mathoverflow.net": "science",
    "wolfram.com": "science",
    # academic / education
    "scholar.google.com": "academic_education",
    "jstor.org": "academic_education",
    "coursera.org": "academic_education",
    "edx.org": "academic_education",
    "khanacademy.org": "academic_education",
    "mit.edu": "academic_education",
    "ocw.mit.edu": "academic_education",
    # health
    "ncbi.nlm.nih.gov": "health",
    "nih.gov": "health",
    "who.int": "health",
    "cdc.gov": "health",
    "mayoclinic.org": "health",
    "webmd.com": "health",
    "nhs.uk": "health",
    "medlineplus.gov": "health",
    "thelancet.com": "health",
    "bmj.com": "health",
    "nejm.org": "health",
    # reference
    "wikipedia.org": "reference",
    "wikimedia.org": "reference",
    "wiktionary.org": "reference",
    "wikibooks.org": "reference",
    "wikisource.org": "reference",
    "britannica.com": "reference",
    "merriam-webster.com": "reference",
    "dictionary.com": "reference",
    "archive.org": "reference",
    # technology
    "stackoverflow.com": "technology",
    "stackexchange.com": "technology",
    "superuser.com": "technology",
    "serverfault.com": "technology",
    "askubuntu.com": "technology",
    "developer.mozilla.org": "technology",
    "docs.python.org": "technology",
    "readthedocs.io": "technology",
    "readthedocs.org": "technology",
    "arstechnica.com": "technology",
    "techcrunch.com": "technology",
    "theverge.com": "technology",
    "wired.com": "technology",
    "zdnet.com": "technology",
    "cnet.com": "technology",
    "slashdot.org": "technology",
    "engadget.com": "technology",
    # code
    "github.com": "code",
    "gist.github.com": "code",
    "gitlab.com": "code",
    "bitbucket.org": "code",
    "sourceforge.net": "code",
    "codeberg.org": "code",
    # social / forums
    "reddit.com": "social_forum",
    "twitter.com": "social_forum",
    "x.com": "social_forum",
    "facebook.com": "social_forum",
    "instagram.com": "social_forum",
    "quora.com": "social_forum",
    "tumblr.com": "social_forum",
    "pinterest.com": "social_forum",
    "linkedin.com": "social_forum",
    "blogspot.com": "social_forum",
    "wordpress.com": "social_forum",
    "medium.com": "social_forum",
    # ecommerce
    "amazon.com": "ecommerce",
    "ebay.com": "ecommerce",
    "etsy.com": "ecommerce",
    "aliexpress.com": "ecommerce",
    "alibaba.com": "ecommerce",
    "walmart.com": "ecommerce",
    "taobao.com": "ecommerce",
    # entertainment
    "youtube.com": "entertainment",
    "imdb.com": "entertainment",
    "netflix.com": "entertainment",
    "spotify.com": "entertainment",
    "twitch.tv": "entertainment",
    "rottentomatoes.com": "entertainment",
    # news
    "bbc.co.uk": "news",
    "bbc.com": "news",
    "nytimes.com": "news",
    "reuters.com": "news",
    "apnews.com": "news",
    "theguardian.com": "news",
    "washingtonpost.com": "news",
    "cnn.com": "news",
    # finance
    "bloomberg.com": "finance",
    "ft.com": "finance",
    "wsj.com": "finance",
    "investopedia.com": "finance",
    "marketwatch.com": "finance",
}

# UT1 category -> label. Categories not listed (jobsearch, download, vpn, malware ...)
# carry no domain information and are not shipped. Order = priority when a domain is in
# several categories (the more specific first).
UT1_CATEGORIES: dict[str, str] = {
    "press": "news",
    "fakenews": "news",
    "bank": "finance",
    "financial": "finance",
    "bitcoin": "finance",
    "ai": "technology",
    "cleaning": "technology",  # anti-virus, system cleaning software
    "webhosting": "technology",
    "sexual_education": "health",
    "mixed_adult": "adult",
    "lingerie": "adult",
    "forums": "social_forum",
    "social_networks": "social_forum",
    "chat": "social_forum",
    "blog": "social_forum",
    "dating": "social_forum",
    "shopping": "ecommerce",
    "celebrity": "entertainment",
    "games": "entertainment",
    "gambling": "entertainment",
    "arjel": "entertainment",  # French-certified gambling sites
    "audio-video": "entertainment",
    "radio": "entertainment",
    "manga": "entertainment",
    "sports": "entertainment",
    "cooking": "entertainment",
    "astrology": "entertainment",
    "educational_games": "entertainment",
    # Academic library resources (journals, databases, but also newspapers the libraries
    # subscribe to): last, so a newspaper on the press list stays news.
    "liste_bu": "academic_education",
}
# Public suffixes some lists carry as entries (liste_bu has "ac.uk"): never a domain.
_PUBLIC_SUFFIX = re.compile(r"^(?:ac|edu|gov|co|com|org|net|or|ne|go)\.[a-z]{2}$|^[a-z]+$")

# Suffix rules, after the host lists: academic and government domains by their suffix.
# Second-level academic suffixes: .ac.uk, .ac.jp, .edu.au, .edu.cn ...
_ACADEMIC = re.compile(r"(^|\.)(edu|ac\.[a-z]{2}|edu\.[a-z]{2})$")
_GOVERNMENT = re.compile(r"(^|\.)(gov|mil|gov\.[a-z]{2}|gouv\.[a-z]{2}|go\.[a-z]{2})$")


def suffix_rule(host: str) -> tuple[str, str] | None:
    academic = _ACADEMIC.search(host)
    if academic:
        return "academic_education", "suffix:" + academic.group(2)
    if _GOVERNMENT.search(host):
        return "reference", "suffix:gov"
    return None


# --- the shipped UT1 category table --------------------------------------------------------


def build_ut1_file(ut1_dir: Path, output: Path = UT1_DOMAINS) -> dict:
    """UT1 category directories -> sorted 56-bit host hashes + category codes (.npz).

    Only the hashes are shipped (CC BY-SA 4.0 allows derived works with attribution and
    the same licence: mixers/data/README.md)."""
    categories = list(UT1_CATEGORIES)
    best: dict[str, int] = {}
    for code, category in enumerate(categories):
        path = ut1_dir / category / "domains"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: UT1 category {category!r} missing")
        for line in path.read_text(encoding="utf-8", errors="replace").split():
            domain = line.strip().lower().rstrip(".")
            if domain and not domain.startswith("#") and not _PUBLIC_SUFFIX.match(domain):
                best.setdefault(domain, code)  # first category in priority order wins
    domains = sorted(best)
    hashes = hash_keys(domains)
    codes = np.array([best[d] for d in domains], np.uint8)
    order = np.argsort(hashes, kind="stable")
    hashes, codes = hashes[order], codes[order]
    keep = np.ones(len(hashes), bool)
    keep[1:] = hashes[1:] != hashes[:-1]  # 56-bit collisions: keep the first
    meta = {
        "source": "UT1 blacklists (Universite Toulouse 1 Capitole, Fabrice Prigent), CC BY-SA 4.0",
        "categories": categories,
        "domains": int(keep.sum()),
        "per_category": {c: int((codes[keep] == i).sum()) for i, c in enumerate(categories)},
        "hash": "blake2b-8 bytes, big-endian, >> 8 (56 bits), as filters/urls.py",
        "lists_sha256": hashlib.sha256(
            b"".join((ut1_dir / c / "domains").read_bytes() for c in categories)
        ).hexdigest(),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "wb") as f:
        np.savez_compressed(
            f, hashes=hashes[keep], codes=codes[keep], meta=np.array(json.dumps(meta))
        )
    return meta


@cache
def load_ut1_domains(path: Path = UT1_DOMAINS) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(sorted hashes, category codes, category names); cached per process."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: the UT1 category table is missing (rebuild it with "
            "`python -m mixers.domains build-ut1 ../shared/data/lists/ut1`)"
        )
    with np.load(path) as npz:
        meta = json.loads(str(npz["meta"]))
        return npz["hashes"].astype(np.uint64), npz["codes"], meta["categories"]


def url_labels(urls: list[str | None]) -> list[tuple[str, str] | None]:
    """(label, match) of each URL from the URL rules, or None."""
    hashes, codes, categories = load_ut1_domains()
    hosts = [parse_host(url)[0] if url else "" for url in urls]
    # every (document, parent domain) pair, most specific first, in one lookup
    owners, names = [], []
    for i, host in enumerate(hosts):
        for name in domain_and_parents(host)[:-1] if host else []:  # not the bare TLD
            owners.append(i)
            names.append(name)
    found = np.full(len(names), -1, np.int64)
    if names and len(hashes):
        keys = hash_keys(names)
        index = np.searchsorted(hashes, keys)
        index[index == len(hashes)] = 0
        hit = hashes[index] == keys
        found[hit] = codes[index[hit]]
    out: list[tuple[str, str] | None] = [None] * len(urls)
    for owner, name, code in zip(owners, names, found.tolist(), strict=True):
        if out[owner] is not None:
            continue
        label = KNOWN_HOSTS.get(name)
        if label is not None:
            out[owner] = (label, f"host:{name}")
        elif code >= 0:
            category = categories[code]
            out[owner] = (UT1_CATEGORIES[category], f"ut1:{category}:{name}")
    for i, host in enumerate(hosts):
        if out[i] is None and host:
            out[i] = suffix_rule(host)
    return out


# --- the classifier ---------------------------------------------------------------------------

# Lexical cues, as extra tokens: fastText sees them whatever the surrounding words.
CUES: dict[str, re.Pattern] = {
    "__price__": re.compile(r"[$€£¥]\s?\d|\d[\d.,]*\s?(?:usd|eur|€|\$)", re.I),
    "__shop__": re.compile(
        r"add to (?:cart|basket|bag|wishlist)|free shipping|in stock|checkout|\bsku\b", re.I
    ),
    "__cite__": re.compile(r"\bet al\.|\[\d{1,3}(?:[,–-]\d{1,3})*\]|\bdoi:|\barxiv:", re.I),
    "__math__": re.compile(r"\\(?:frac|sum|int|alpha|mathbf)|[≤≥±∑∫∂√∞≈]|\b[a-z]\s?=\s?\d"),
    "__code__": re.compile(
        r"^\s*(?:def |class |import |#include|public |function |return |var |const )|[{};]\s*$",
        re.M,
    ),
    "__date__": re.compile(r"\b(?:updated|published|posted)\b.{0,20}\b(?:19|20)\d\d\b", re.I),
}


def cue_tokens(text: str) -> str:
    return " ".join(token for token, pattern in CUES.items() if pattern.search(text))


def domain_input(text: str, max_chars: int) -> str:
    """The one line the domain model sees for a text (training and labelling alike)."""
    head = text[:max_chars]
    return f"{model_input(head, max_chars)} {cue_tokens(head)}".strip()


def load_domain_model(model: str):
    return load_shipped_or_file(model, DEFAULT_MODEL, "domains.model")


def predict_domains(model, lines: list[str]) -> tuple[list[str], np.ndarray]:
    """Top label and its probability for each line."""
    if not lines:
        return [], np.zeros(0, np.float32)
    labels, probs = model.predict(lines, k=1)
    top = [row[0].removeprefix(LABEL_PREFIX) if len(row) else OTHER for row in labels]
    scores = np.array([row[0] if len(row) else 0.0 for row in probs], np.float32)
    return top, np.clip(scores, 0.0, 1.0)


class DomainStage:
    """Stage: domain, domain_score, domain_source, domain_match for alive documents."""

    name = "domains"

    def __init__(self, cfg: DomainsConfig) -> None:
        self.cfg = cfg
        self.model = None
        if cfg.enabled and cfg.url_rules:
            load_ut1_domains()
        if cfg.enabled and cfg.classifier:
            self.model = load_domain_model(cfg.model)
            unknown = {name.removeprefix(LABEL_PREFIX) for name in self.model.get_labels()} - set(
                DOMAIN_LABELS
            )
            if unknown:
                raise ValueError(
                    f"domains.model: labels {sorted(unknown)} are not domains "
                    f"({', '.join(DOMAIN_LABELS)})"
                )

    def __reduce__(self):
        # fastText models do not pickle: ship the config, load again in the worker.
        return (DomainStage, (self.cfg,))

    def __call__(self, batch: pa.Table) -> pa.Table:
        n = batch.num_rows
        domain = np.full(n, None, dtype=object)
        score = np.zeros(n, np.float32)
        source = np.full(n, None, dtype=object)
        match = np.full(n, None, dtype=object)
        alive = alive_mask(batch).to_numpy(zero_copy_only=False)
        if self.cfg.enabled:
            domain[alive], source[alive] = OTHER, "none"
            rows = np.flatnonzero(alive)
            if self.cfg.url_rules and len(rows):
                urls = batch[S.URL].take(pa.array(rows, pa.int64())).to_pylist()
                for row, found in zip(rows.tolist(), url_labels(urls), strict=True):
                    if found is not None:
                        domain[row], match[row] = found
                        score[row], source[row] = 1.0, "url"
            if self.model is not None:
                self._classify(batch, alive & (source == "none"), domain, score, source)
        valid = ~alive if self.cfg.enabled else np.ones(n, bool)
        batch = set_column(batch, S.DOMAIN, pa.array(domain.tolist(), pa.string()), pa.string())
        batch = set_column(batch, S.DOMAIN_SCORE, pa.array(score, mask=valid), pa.float32())
        batch = set_column(
            batch, S.DOMAIN_SOURCE, pa.array(source.tolist(), pa.string()), pa.string()
        )
        return set_column(batch, S.DOMAIN_MATCH, pa.array(match.tolist(), pa.string()), pa.string())

    def _classify(self, batch, todo, domain, score, source) -> None:
        languages = set(self.cfg.languages)
        langs = batch[S.LANG].to_pylist()
        todo = todo & np.fromiter((lang in languages for lang in langs), bool, len(langs))
        todo &= pc.is_valid(batch[S.TEXT]).to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(todo)
        texts = batch[S.TEXT].take(pa.array(rows, pa.int64())).to_pylist()
        labels, probs = predict_domains(
            self.model, [domain_input(t, self.cfg.max_chars) for t in texts]
        )
        for row, label, prob in zip(rows.tolist(), labels, probs.tolist(), strict=True):
            score[row] = prob
            if prob >= self.cfg.min_score and label != OTHER:
                domain[row], source[row] = label, "classifier"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mixers.domains")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build-ut1", help="rebuild mixers/data/ut1_domains.npz")
    build.add_argument("ut1_dir", type=Path, help="UT1 lists directory (<category>/domains)")
    build.add_argument("-o", "--output", type=Path, default=UT1_DOMAINS)
    label = sub.add_parser("label", help="URL rule label of each URL given")
    label.add_argument("urls", nargs="+")
    args = parser.parse_args(argv)
    if args.command == "build-ut1":
        print(json.dumps(build_ut1_file(args.ut1_dir, args.output), indent=1))
    else:
        for url, found in zip(args.urls, url_labels(args.urls), strict=True):
            print(url, *(found or (OTHER, "none")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
