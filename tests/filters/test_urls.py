"""URL filter: the shipped UT1 adult list (hashed), parent-domain matching, user lists,
banned words in URLs; the stage drops before extraction and never loses a row."""

from __future__ import annotations

import dataclasses
import io
import tarfile
from functools import cache

import numpy as np
import pyarrow as pa
import pytest

from filters.urls import (
    UrlFilterStage,
    build_hash_file,
    contains,
    decode_sorted_hashes,
    domain_and_parents,
    encode_sorted_hashes,
    hash_keys,
    load_ut1_hashes,
    parse_host,
)
from pipeline import schema as S
from pipeline.config import UrlFilterConfig

R = S.Reason


@cache
def default_stage() -> UrlFilterStage:
    return UrlFilterStage(UrlFilterConfig())


def stage(**overrides) -> UrlFilterStage:
    if not overrides:
        return default_stage()
    return UrlFilterStage(dataclasses.replace(UrlFilterConfig(), **overrides))


def reasons(urls, **overrides) -> list:
    b = pa.table(
        {
            S.URL: pa.array(urls, pa.string()),
            S.DROP_REASON: pa.nulls(len(urls), pa.string()),
            S.DROP_STAGE: pa.nulls(len(urls), pa.string()),
        }
    )
    return stage(**overrides)(b)[S.DROP_REASON].to_pylist()


def test_shipped_list_is_the_whole_ut1_adult_list_in_36_mb():
    domains, urls, meta = load_ut1_hashes()
    assert len(domains) == meta["domains"] > 4_500_000
    assert domains.dtype == np.uint64 and domains.nbytes < 40_000_000
    assert np.all(domains[1:] > domains[:-1])  # sorted, unique
    assert len(urls) > 19_000
    assert "CC BY-SA" in meta["licence"]


def test_adult_domains_their_subdomains_and_adult_tlds_are_blocked():
    urls = [
        "http://0-1sex.com/",  # on the list
        "https://www.0-1sex.com/videos?id=3",  # subdomain of a listed domain
        "http://A.B.0-1SEX.COM:8080/x",  # case, port, deep subdomain
        "http://example.xxx/",  # .xxx is on the list as a TLD
        "https://en.wikipedia.org/wiki/Sex_education",  # one soft word only: passes
        "https://www.bbc.co.uk/news",
    ]
    assert reasons(urls) == [R.URL_ADULT_DOMAIN] * 4 + [None, None]


STRIMBAT_URL = (
    "http://0149614511.strimbat.fr/porno-anal-escort-granville-faire-sa-salope-baise-une-"
    "vache-video-gratuite-x-escort-girl-auxerre"
)


def test_adult_url_list_banned_words_soft_words_and_subwords():
    urls = [
        STRIMBAT_URL,  # on the UT1 URL list
        "http://shop.example.com/bigcock/page",  # banned word
        "http://blog.example.com/hot-babes-escort-guide",  # two soft words
        "http://blog.example.com/escort-news",  # one soft word: passes
        "http://example.com/2girls1cup.html",  # banned subword inside a word
    ]
    assert reasons(urls) == [
        R.URL_ADULT_URL,
        R.URL_BANNED_WORD,
        R.URL_SOFT_BANNED_WORDS,
        None,
        R.URL_BANNED_SUBWORD,
    ]


def test_user_allow_and_block_lists(tmp_path):
    blocked = tmp_path / "block.txt"
    blocked.write_text("# my list\nspam.example.org\n")
    urls = ["http://www.0-1sex.com/", "http://a.spam.example.org/x", "http://example.org/"]
    out = reasons(urls, allow_domains=["0-1sex.com"], block_domains_file=str(blocked))
    assert out == [None, R.URL_USER_BLOCKED, None]


@pytest.mark.parametrize("key", ["allow_domains_file", "block_domains_file"])
def test_bad_domain_list_files_name_their_key(tmp_path, key):
    binary = tmp_path / "domains.bin"
    binary.write_bytes(b"\xff\xfe\x00\x01example.org\n")
    cases = [
        (binary, ValueError, "is not a UTF-8 text file of domains"),
        (tmp_path, FileNotFoundError, "is a directory, not a domain list file"),
        (tmp_path / "missing.txt", FileNotFoundError, "domain list file not found"),
    ]
    for path, error, problem in cases:
        with pytest.raises(error) as excinfo:
            UrlFilterStage(UrlFilterConfig(**{key: str(path)}))
        assert str(excinfo.value).startswith(f"filters.urls.{key}: {path}")
        assert problem in str(excinfo.value)


def test_match_column_says_what_blocked_and_earlier_drops_are_kept():
    b = pa.table(
        {
            S.URL: pa.array(["http://www.0-1sex.com/", "http://0-1sex.com/", None], pa.string()),
            S.DROP_REASON: pa.array([None, "http_status", None], pa.string()),
            S.DROP_STAGE: pa.array([None, "read", None], pa.string()),
        }
    )
    out = stage()(b)
    assert out.num_rows == 3
    assert out[S.DROP_REASON].to_pylist() == [R.URL_ADULT_DOMAIN, "http_status", None]
    assert out[S.DROP_STAGE].to_pylist() == ["url_filter", "read", None]
    assert out[S.URL_MATCH].to_pylist() == ["adult_domain:0-1sex.com", None, None]


def test_disabled_rules_and_disabled_filter():
    url = ["http://www.0-1sex.com/"]
    assert reasons(url, enabled=False) == [None]
    relaxed = UrlFilterStage(UrlFilterConfig(), disabled_rules=[R.URL_ADULT_DOMAIN])
    assert relaxed.matches(url) == [None]
    # UT1's URL list is still wanted, so still loaded and still matching
    assert [match and match[0] for match in relaxed.matches([STRIMBAT_URL])] == [R.URL_ADULT_URL]
    neither = UrlFilterStage(
        UrlFilterConfig(), disabled_rules=[R.URL_ADULT_DOMAIN, R.URL_ADULT_URL]
    )
    assert len(neither.ut1_domains) == len(neither.ut1_urls) == 0  # not loaded for nothing


def test_host_parsing_and_parents():
    assert parse_host("HTTP://User@Www.Example.COM.:80/a/b?c") == ("www.example.com", "/a/b")
    assert parse_host("example.com/path") == ("example.com", "/path")
    assert parse_host("http://[::1") == ("", "")
    assert domain_and_parents("a.b.example.com") == [
        "a.b.example.com", "b.example.com", "example.com", "com",
    ]  # fmt: skip


def test_hash_encoding_round_trip_and_build(tmp_path):
    hashes = np.unique(hash_keys([f"site{i}.example" for i in range(5000)]))
    parts = encode_sorted_hashes(hashes)
    decoded = decode_sorted_hashes(parts["low"], parts["high_deltas_xz"], str(parts["high_dtype"]))
    assert np.array_equal(decoded, hashes)
    assert contains(decoded, hash_keys(["site7.example", "other.example"])).tolist() == [
        True,
        False,
    ]
    source = tmp_path / "lists.tar.gz"
    with tarfile.open(source, "w:gz") as tar:
        for name, body in [("domains", b"bad.example\nworse.example\n"), ("urls", b"x.org/a\n")]:
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    meta = build_hash_file(source, tmp_path / "out.npz")
    assert meta["domains"] == 2 and meta["urls"] == 1
    domains, urls, _ = load_ut1_hashes(tmp_path / "out.npz")
    assert contains(domains, hash_keys(["worse.example", "good.example"])).tolist() == [
        True,
        False,
    ]


@pytest.mark.parametrize("url", ["", "not a url", "http://", "mailto:a@b.c"])
def test_odd_urls_do_not_raise(url):
    assert reasons([url]) == [None]


def test_every_sampled_domain_of_the_source_list_is_blocked(shared_data):
    """The shipped hashes hold the list FineWeb uses (../shared/data, 1 in 500 checked)."""
    source = shared_data / "lists" / "url-blocklist" / "url_filterblacklistsv0_3_0.tar.gz"
    with tarfile.open(source, "r:gz") as tar:
        domains = tar.extractfile("domains").read().decode().split()[::500]
    assert len(domains) > 1000  # the list holds millions
    urls = [f"http://{domain}/" for domain in domains]
    matches = default_stage().matches(urls)
    assert all(m is not None and m[0] == R.URL_ADULT_DOMAIN for m in matches)
