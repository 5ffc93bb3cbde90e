"""URL filter, before extraction: blocked pages are never extracted.

Extraction costs ~10 ms per page; looking a URL up costs ~10 us, so every page this stage
drops is a direct saving. Rules, in order (each a drop reason, each switchable with
`filters.disabled_rules`; domains on the user's allow list pass all of them):

1. `url_user_blocked`: the host or a parent domain is on the user's block list;
2. `url_adult_domain`: the host or a parent domain (down to the TLD: the list holds the
   adult TLDs .xxx, .porn, .sex, .adult) is on the UT1 adult list, 4,558,939 domains;
3. `url_adult_url`: host + path is on the UT1 adult URL list (19,586 URLs);
4. `url_banned_word`: a word of the URL (split on non-alphanumerics) is banned;
5. `url_soft_banned_words`: at least `soft_banned_words_min` (2) "soft" banned words;
6. `url_banned_subword`: a banned subword inside the URL with non-alphanumerics removed.

These are FineWeb's URL rules (Penedo et al. 2024, section 3.3) with its lists (datatrove
0.10.1 assets). Matching parents of the host covers datatrove's registered-domain and
full-host checks and everything between, without a public-suffix list.

Memory: a Python set of 4.5 M domain strings is ~400 MB per worker. The list is shipped
and held as a sorted numpy array of 56-bit hashes (blake2b, 8 bytes, top 56 bits): 36 MB
in memory, looked up for a whole batch with one `np.searchsorted`. The chance that a
host not on the list collides with one that is, is 4.5e6 / 2**56 = 6e-11 per lookup:
well under one wrongly blocked page in a whole Common Crawl snapshot. The file
(`filters/data/ut1_adult_hashes.npz`, ~20 MB) stores each hash's low 32 bits raw and
its high 24 bits as lzma-compressed deltas, and loads in a fraction of a second; it is
rebuilt from the list with `python -m filters.urls build url_filterblacklistsv0_3_0.tar.gz`.
The UT1 lists are by Fabrice Prigent, Universite Toulouse 1 Capitole, CC BY-SA 4.0
(filters/data/README.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import re
import sys
import tarfile
import time
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa

from filters.safety import read_word_list
from pipeline import schema as S
from pipeline.config import UrlFilterConfig
from pipeline.stage import alive_mask, mark_dropped, set_column

R = S.Reason
DATA = Path(__file__).resolve().parent / "data"
UT1_HASHES = DATA / "ut1_adult_hashes.npz"
HASH_FORMAT = "blake2b-8 bytes, big-endian, >> 8 (56 bits)"
LOW_BITS = 32

URL_RULE_REASONS = [
    R.URL_USER_BLOCKED,
    R.URL_ADULT_DOMAIN,
    R.URL_ADULT_URL,
    R.URL_BANNED_WORD,
    R.URL_SOFT_BANNED_WORDS,
    R.URL_BANNED_SUBWORD,
]
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def hash56(key: str) -> int:
    """The 56-bit hash the domain and URL lists are stored as."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 8


def hash_keys(keys: list[str]) -> np.ndarray:
    return np.fromiter((hash56(key) for key in keys), np.uint64, len(keys))


def parse_host(url: str) -> tuple[str, str]:
    """(host, path) of a URL: host lowercased without port, user or trailing dot; ""
    when the URL has none."""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").rstrip(".")
    except ValueError:
        return "", ""
    if not host and "://" not in url:  # "example.com/path" without a scheme
        return parse_host("http://" + url.strip())
    return host, parts.path


def domain_and_parents(host: str) -> list[str]:
    """a.b.example.com -> [a.b.example.com, b.example.com, example.com, com]."""
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def url_key(host: str, path: str) -> str:
    """How an entry of the UT1 URL list is keyed: host (no "www.") + path, no trailing /."""
    host = host.removeprefix("www.")
    return (host + path).rstrip("/")


# --- the shipped hash file -------------------------------------------------------------------


def encode_sorted_hashes(hashes: np.ndarray) -> dict[str, np.ndarray]:
    """Sorted unique 56-bit hashes -> low 32 bits raw + high 24 bits as lzma'd deltas."""
    hashes = np.unique(hashes)
    high = (hashes >> np.uint64(LOW_BITS)).astype(np.int64)
    deltas = np.diff(high, prepend=0)
    dtype = np.uint8 if deltas.max(initial=0) < 256 else np.uint32
    packed = lzma.compress(deltas.astype(dtype).tobytes(), preset=9)
    return {
        "low": (hashes & np.uint64(0xFFFFFFFF)).astype("<u4"),
        "high_deltas_xz": np.frombuffer(packed, np.uint8),
        "high_dtype": np.array(np.dtype(dtype).str),
    }


def decode_sorted_hashes(low: np.ndarray, high_deltas_xz: np.ndarray, high_dtype: str):
    deltas = np.frombuffer(lzma.decompress(high_deltas_xz.tobytes()), np.dtype(high_dtype))
    high = np.cumsum(deltas, dtype=np.uint64)
    return (high << np.uint64(LOW_BITS)) | low.astype(np.uint64)


def build_hash_file(source: Path, output: Path) -> dict:
    """UT1 list tarball (members `domains` and `urls`) -> the shipped .npz."""
    with tarfile.open(source, "r:gz") as tar:
        domains = tar.extractfile("domains").read().decode("utf-8").split()
        urls = tar.extractfile("urls").read().decode("utf-8").split()
    domain_keys = [d.strip().lower().rstrip(".") for d in domains if d and not d.startswith("#")]
    url_keys = []
    for entry in urls:
        host, _, path = entry.strip().partition("/")
        url_keys.append(url_key(host.lower(), "/" + path if path else ""))
    meta = {
        "source": source.name,
        "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        "hash": HASH_FORMAT,
        "domains": len(set(domain_keys)),
        "urls": len(set(url_keys)),
        "licence": "UT1 blacklists, Universite Toulouse 1 Capitole, CC BY-SA 4.0",
    }
    domain_part = encode_sorted_hashes(hash_keys(domain_keys))
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "wb") as f:
        np.savez(
            f,
            domains_low=domain_part["low"],
            domains_high_deltas_xz=domain_part["high_deltas_xz"],
            domains_high_dtype=domain_part["high_dtype"],
            urls=np.unique(hash_keys(url_keys)),
            meta=np.array(json.dumps(meta, sort_keys=True)),
        )
    return meta


@cache
def load_ut1_hashes(path: Path = UT1_HASHES) -> tuple[np.ndarray, np.ndarray, dict]:
    """(sorted domain hashes, sorted URL hashes, metadata); cached per process."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: the UT1 adult list is missing (rebuild it with "
            "`python -m filters.urls build url_filterblacklistsv0_3_0.tar.gz`)"
        )
    with np.load(path) as npz:
        domains = decode_sorted_hashes(
            npz["domains_low"], npz["domains_high_deltas_xz"], str(npz["domains_high_dtype"])
        )
        return domains, npz["urls"].astype(np.uint64), json.loads(str(npz["meta"]))


def contains(sorted_hashes: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Membership of each hash in a sorted array, vectorised."""
    if len(sorted_hashes) == 0 or len(hashes) == 0:
        return np.zeros(len(hashes), bool)
    index = np.searchsorted(sorted_hashes, hashes)
    index[index == len(sorted_hashes)] = 0
    return sorted_hashes[index] == hashes


def read_domain_file(path: str, key: str) -> list[str]:
    """The domains of a user list file; a bad file is an error naming its config `key`."""
    if not path:
        return []
    file = Path(path).expanduser()
    if file.is_dir():
        raise FileNotFoundError(f"{key}: {path} is a directory, not a domain list file")
    if not file.is_file():
        raise FileNotFoundError(f"{key}: {path}: domain list file not found")
    try:
        return read_word_list(file)
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{key}: {path} is not a UTF-8 text file of domains ({exc.reason} at byte {exc.start})"
        ) from None
    except OSError as exc:
        raise ValueError(f"{key}: cannot read {path}: {exc.strerror}") from None


def _normalise_domains(domains: list[str]) -> frozenset[str]:
    out = set()
    for domain in domains:
        domain = domain.strip().lower().rstrip(".")
        if "://" in domain or "/" in domain:
            domain = parse_host(domain)[0]
        if domain:
            out.add(domain.removeprefix("*."))
    return frozenset(out)


# --- the stage -------------------------------------------------------------------------------


class UrlFilterStage:
    """Stage: block URLs by domain lists and banned words, before extraction."""

    name = "url_filter"

    def __init__(self, cfg: UrlFilterConfig, disabled_rules: list[str] = ()) -> None:
        self.cfg = cfg
        self.disabled = set(disabled_rules)
        self.allow = _normalise_domains(
            cfg.allow_domains
            + read_domain_file(cfg.allow_domains_file, "filters.urls.allow_domains_file")
        )
        self.block = _normalise_domains(
            cfg.block_domains
            + read_domain_file(cfg.block_domains_file, "filters.urls.block_domains_file")
        )
        wants_ut1 = {R.URL_ADULT_DOMAIN, R.URL_ADULT_URL} - self.disabled
        if cfg.enabled and wants_ut1:
            self.ut1_domains, self.ut1_urls, _ = load_ut1_hashes()
        else:
            self.ut1_domains = self.ut1_urls = np.zeros(0, np.uint64)
        self.banned_words = frozenset(
            _NON_ALNUM.sub("", w) for w in read_word_list(DATA / "banned_words.txt")
        )
        self.soft_banned_words = frozenset(
            _NON_ALNUM.sub("", w) for w in read_word_list(DATA / "soft_banned_words.txt")
        )
        subwords = sorted(
            {_NON_ALNUM.sub("", w) for w in read_word_list(DATA / "banned_subwords.txt")},
            key=len,
            reverse=True,
        )
        self.banned_subwords = re.compile("|".join(map(re.escape, subwords)))

    def __reduce__(self):
        return (UrlFilterStage, (self.cfg, sorted(self.disabled)))

    def matches(self, urls: list[str | None]) -> list[tuple[str, str] | None]:
        """(reason, what matched) for each URL, None when it passes."""
        hosts = [parse_host(url) if url else ("", "") for url in urls]
        candidates = [domain_and_parents(host) if host else [] for host, _ in hosts]
        flat = [domain for domains in candidates for domain in domains]
        on_list = contains(self.ut1_domains, hash_keys(flat)).tolist()
        url_hits = contains(
            self.ut1_urls, hash_keys([url_key(host, path) for host, path in hosts])
        ).tolist()
        results: list[tuple[str, str] | None] = []
        offset = 0
        for i, url in enumerate(urls):
            domains = candidates[i]
            listed = on_list[offset : offset + len(domains)]
            offset += len(domains)
            results.append(self._match_one(url, domains, listed, url_hits[i]))
        return results

    def _match_one(self, url, domains, listed, url_listed) -> tuple[str, str] | None:
        if not url or any(domain in self.allow for domain in domains):
            return None
        enabled = [r for r in URL_RULE_REASONS if r not in self.disabled]
        for reason in enabled:
            if reason == R.URL_USER_BLOCKED:
                hit = next((d for d in domains if d in self.block), None)
            elif reason == R.URL_ADULT_DOMAIN:
                hit = next((d for d, on in zip(domains, listed, strict=True) if on), None)
            elif reason == R.URL_ADULT_URL:
                hit = domains[0] if url_listed and domains else None
            elif reason == R.URL_BANNED_WORD:
                words = set(_NON_ALNUM.split(url.lower()))
                hit = next((w for w in sorted(words) if w in self.banned_words), None)
            elif reason == R.URL_SOFT_BANNED_WORDS:
                words = set(_NON_ALNUM.split(url.lower()))
                soft = sorted(words & self.soft_banned_words)
                hit = ",".join(soft) if len(soft) >= self.cfg.soft_banned_words_min else None
            else:  # R.URL_BANNED_SUBWORD
                found = self.banned_subwords.search(_NON_ALNUM.sub("", url.lower()))
                hit = found.group(0) if found else None
            if hit:
                return reason, f"{reason.removeprefix('url_')}:{hit}"
        return None

    def __call__(self, batch: pa.Table) -> pa.Table:
        alive = alive_mask(batch).to_numpy(zero_copy_only=False)
        urls = batch[S.URL].to_pylist()
        match_column: list[str | None] = [None] * len(urls)
        reasons: dict[str, np.ndarray] = {}
        if self.cfg.enabled:
            rows = np.flatnonzero(alive)
            for row, match in zip(rows, self.matches([urls[i] for i in rows]), strict=True):
                if match is not None:
                    reason, what = match
                    match_column[row] = what
                    reasons.setdefault(reason, np.zeros(len(urls), bool))[row] = True
        batch = set_column(batch, S.URL_MATCH, pa.array(match_column, pa.string()), pa.string())
        for reason in URL_RULE_REASONS:
            if reason in reasons:
                batch = mark_dropped(batch, pa.array(reasons[reason]), reason, self.name)
        return batch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m filters.urls",
        description="Build the shipped UT1 adult hash list, or look URLs up in it.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="UT1 tarball (members domains, urls) -> .npz")
    build.add_argument("source", type=Path, help="url_filterblacklistsv0_3_0.tar.gz")
    build.add_argument("-o", "--output", type=Path, default=UT1_HASHES)
    check = sub.add_parser("check", help="print what blocks each URL (or 'pass')")
    check.add_argument("urls", nargs="+")
    args = parser.parse_args(argv)
    if args.command == "build":
        start = time.perf_counter()
        meta = build_hash_file(args.source, args.output)
        size = args.output.stat().st_size
        print(json.dumps(meta, indent=2))
        print(f"{args.output}: {size:,} bytes in {time.perf_counter() - start:.1f}s")
        return 0
    stage = UrlFilterStage(UrlFilterConfig())
    for url, match in zip(args.urls, stage.matches(args.urls), strict=True):
        print(f"{url}\t{match[1] if match else 'pass'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
