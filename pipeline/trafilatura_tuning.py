"""trafilatura made faster with byte-identical text: what the extractor child changes.

Extraction is ~80% of a run's CPU, so the extractor child (pipeline/extract_child.py)
calls `tune_trafilatura` before its first page. The four changes are process-wide and
leave every extracted text as trafilatura ships it; the bench's floor runs trafilatura
stock (`make_extractor(settings, tuned=False)`), and tests/pipeline/test_extract.py
compares the two on every bundled page.

1. `plain_element_classes`: lxml's element class lookup at C level rather than in Python
   (~6% less CPU).
2. `guard_regex_tests`: a native XPath test in front of each `re:test()` call in
   trafilatura's XPath expressions, so lxml calls Python only where the regular expression
   can match (~12% less CPU).
3. `lazy_justext_paragraphs`: jusText, one of trafilatura's fallback extractors, formats
   its paragraphs' path strings when they are read and keeps each paragraph's text once
   made (3-5% less CPU).
4. `stoplists_by_identity`: jusText's stoplist cache answers trafilatura's stoplist (every
   language's words, 154,484 of them) without hashing it again on every call (~3% less
   CPU).

1 and 2 together, one process over realpages' 3,913 pages and Dragnet's 1,381: 61.7 ->
51.3 CPU s, the same text on every page; in the side-by-side bench (`floor` against
`floor-tuned`, two processes on 2 cores): 23.5 -> 19.3 s.
"""

from __future__ import annotations

import re
import sys
from functools import cached_property

from justext.paragraph import Paragraph as JustextParagraph
from justext.utils import normalize_whitespace

try:  # Python 3.11+
    from re import _constants as sre_constants
    from re import _parser as sre_parse
except ImportError:  # Python 3.10
    import sre_constants
    import sre_parse


def tune_trafilatura() -> None:
    """Apply the four changes below to trafilatura, jusText and lxml in this process."""
    import trafilatura

    plain_element_classes(trafilatura.utils.HTML_PARSER)
    guard_regex_tests()
    lazy_justext_paragraphs()
    stoplists_by_identity()


REGEXP_NS = "http://exslt.org/regular-expressions"  # EXSLT regular expressions: re:test()

# A guard of more than this many contains() costs more than the Python call it saves
# (trafilatura's longest alternations have ~60 tokens); those get the attribute test.
# On 600 realpages pages: 1 -> 5.96 s, 3 -> 5.70 s, 8 -> 5.64 s, attribute tests alone
# 5.93 s, stock 6.6 s of trafilatura CPU.
MAX_GUARD_LITERALS = 8

# re:test(@attr|@attr..., 'pattern'[, 'flags']), as trafilatura 2.3 writes every one of its
# 44 calls; a call written otherwise is left as it is.
RE_TEST_CALL = re.compile(r"""re:test\((@[\w-]+(?:\|@[\w-]+)*),\s*'([^']*)'(?:,\s*'([^']*)')?\)""")


def plain_element_classes(parser) -> None:
    """Give every element `parser` builds the plain lxml.html HtmlElement class.

    lxml.html's parser picks each element's Python class through a lookup written in
    Python (HtmlElementClassLookup.lookup), called for every element proxy: ~4,000 calls a
    page in trafilatura, only so that <form>, <input>, <select>, <textarea> and <label>
    get their form helpers, which trafilatura never calls. lxml's C-level default lookup
    with the same classes for the rest skips that call. On realpages, two processes on
    2 cores: 25.6 s -> 24.0 s (-6%, mean of 3 alternating rounds; -7% for one process).

    (Also tried: freezing the import heap and collecting every 50,000 allocations. -5%
    for one process, -2% for two, not more with this: left out.)"""
    from lxml import etree
    from lxml import html as lxml_html

    parser.set_element_class_lookup(
        etree.ElementDefaultClassLookup(
            element=lxml_html.HtmlElement,
            comment=lxml_html.HtmlComment,
            pi=lxml_html.HtmlProcessingInstruction,
            entity=lxml_html.HtmlEntity,
        )
    )


# --- Guards in front of re:test() ---------------------------------------------------------
#
# trafilatura 2.3 finds boilerplate and content blocks by their id, class and style, with
# XPath expressions full of EXSLT regular expressions: `.//*[self::div or ...][re:test(@id,
# '^shar|social|...') or re:test(@class, '...')]`. lxml evaluates each re:test() as a
# Python callback, for every element the step reaches, whether or not it has the
# attribute: ~1-2 us a call, and these expressions took 2.2 of trafilatura's 6.6 CPU
# seconds on 600 realpages pages. Each call becomes `(GUARD and re:test(...))`, GUARD being
# evaluated in C by libxml2:
#
# - `contains(@class, 'social') or contains(@class, 'nav') ...`: the literal strings of
#   which every match of the pattern holds one (`required_literals`), on each attribute
#   of the call, when the pattern is case-sensitive and has at most MAX_GUARD_LITERALS;
# - otherwise `@id or @class`: the element has one of the attributes.
#
# Why the answers stay the same: re:test() reads the string value of the first attribute
# of its node-set, '' when there is none. A pattern that cannot match '' is false without
# the attribute, as the guard is; a pattern that matches contains one of the literals in
# the attribute it read, and the guard tests every attribute, so it is true and re:test()
# decides. A pattern that matches '' keeps its bare call. Measured: 2.36 -> 1.59 s in those
# expressions, 6.6 -> 5.7 s of trafilatura CPU, the same text on every page.


def required_literals(pattern: str) -> set[str] | None:
    """Strings of which every match of the case-sensitive `pattern` contains at least one
    (none of them a substring of another), or None when the pattern has no such set or
    can match the empty string. `(?:entry|article)-content|body-text` gives {'-content',
    'body-text'}."""
    if re.search(pattern, ""):
        return None
    parsed = sre_parse.parse(pattern)
    if parsed.state.flags & re.IGNORECASE:  # a leading (?i)
        return None
    found = _literals_of_sequence(parsed)
    if not found:
        return None
    return {s for s in found if not any(other != s and other in s for other in found)}


def _literals_of_sequence(items) -> set[str] | None:
    """`required_literals` of a parsed sequence: every run of literal characters is
    required, and so is the set of any part that must match (a group, an alternation each
    of whose branches has a set, a repeat of at least one); the best of these is the one
    whose shortest string is longest. Anything else (a class, a dot, an anchor, a
    lookaround, a group with its own flags) ends a run and adds nothing."""
    candidates, run = [], []
    for op, av in [*items, (None, None)]:
        if op is sre_constants.LITERAL:
            run.append(chr(av))
            continue
        if run:
            candidates.append({"".join(run)})
            run = []
        part = None
        if op is sre_constants.SUBPATTERN and not av[1] and not av[2]:  # no (?i:...) flags
            part = _literals_of_sequence(av[3])
        elif op is sre_constants.BRANCH:
            branches = [_literals_of_sequence(branch) for branch in av[1]]
            if all(branches):
                part = set().union(*branches)
        elif op in _REPEATS and av[0] >= 1:  # (min, max, item)
            part = _literals_of_sequence(av[2])
        if part:
            candidates.append(part)
    if not candidates:
        return None
    return max(candidates, key=lambda strings: (min(map(len, strings)), -len(strings)))


_REPEATS = tuple(
    getattr(sre_constants, name)
    for name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")
    if hasattr(sre_constants, name)
)


def _xpath_string(text: str) -> str | None:
    """An XPath 1.0 string literal for `text`, or None (it holds both quote marks)."""
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    return None


def guard_call(call: re.Match) -> str:
    """One `re:test(...)` call (a RE_TEST_CALL match) with its guard in front."""
    attributes, pattern, flags = call.group(1).split("|"), call.group(2), call.group(3) or ""
    ignore_case = "i" in flags  # lxml: re.IGNORECASE when the flags hold an "i"
    try:
        if re.search(pattern, "", re.IGNORECASE if ignore_case else 0):
            return call.group(0)  # true without the attribute: no guard can stand in front
    except re.error:
        return call.group(0)  # lxml raises on it where it runs: left to do that
    literals = None if ignore_case else required_literals(pattern)
    quoted = [_xpath_string(s) for s in sorted(literals or ())]
    if literals and len(literals) <= MAX_GUARD_LITERALS and None not in quoted:
        tests = [f"contains({a}, {q})" for a in attributes for q in quoted]
    else:
        tests = attributes
    return f"(({' or '.join(tests)}) and {call.group(0)})"


def guarded_xpath(path: str) -> str:
    """`path` with a guard in front of each of its re:test() calls."""
    return RE_TEST_CALL.sub(guard_call, path)


# id -> expression, for every guarded expression this process made (kept alive here, so
# an id is never reused): a second call leaves them alone.
_GUARDED: dict[int, object] = {}


def guard_regex_tests() -> int:
    """Replace every XPath expression with re:test() calls in trafilatura's loaded modules
    (module attributes, and lists of expressions in place) by its guarded version.
    Returns the number of calls guarded by this call (0 the second time)."""
    from lxml import etree
    from lxml.etree import XPath

    modules = [m for name, m in sys.modules.items() if name.split(".")[0] == "trafilatura"]
    replaced: dict[int, XPath] = {}
    guarded = 0

    def guarded_version(expression: XPath) -> XPath:
        nonlocal guarded
        if id(expression) in _GUARDED or "re:test(" not in expression.path:
            return expression
        if id(expression) not in replaced:
            try:  # compiled as trafilatura compiles them; one that does not stays stock
                new = XPath(guarded_xpath(expression.path), namespaces={"re": REGEXP_NS})
            except etree.XPathError:
                return expression
            replaced[id(expression)] = _GUARDED[id(new)] = new
            guarded += len(RE_TEST_CALL.findall(expression.path))
        return replaced[id(expression)]

    for module in modules:
        for name, value in list(vars(module).items()):
            if isinstance(value, XPath):
                setattr(module, name, guarded_version(value))
            elif isinstance(value, list) and value and all(isinstance(e, XPath) for e in value):
                value[:] = [guarded_version(e) for e in value]
    return guarded


# --- jusText's paragraphs, made lazily ----------------------------------------------------


def lazy_justext_paragraphs() -> None:
    """Make jusText build `LazyParagraph`s (jusText 3.0.2, pinned in pyproject.toml)."""
    import justext.core

    justext.core.Paragraph = LazyParagraph


class LazyParagraph(JustextParagraph):
    """jusText's Paragraph, with the same answers for less work.

    trafilatura runs jusText on pages its own pass finds short (115 of 600 realpages pages,
    ~16% of trafilatura's CPU). jusText's ParagraphMaker opens a Paragraph at every block
    tag, ~550 on such a page, most of which never hold text, and each formats its DOM path
    and XPath strings at once; `text` joins and normalizes the text nodes again on every
    read, ~5 reads a paragraph in the classifier. Here the path is kept as a snapshot of
    jusText's (tag, order, children) tuples, whose tag and order never change, and the
    strings are made when first read; the text is kept until another text node is appended
    (nodes are only ever appended). trafilatura CPU, the same text: 5.53 -> 5.22 s on 600
    realpages pages, 13.30 -> 12.85 s on 1,500 others (means of 2 and 3 alternating
    rounds in one process)."""

    def __init__(self, path):  # not the parent's: it would format the strings
        self._path = tuple(path._elements)
        self.text_nodes = []
        self.chars_count_in_links = 0
        self.tags_count = 0
        self.class_type = ""  # short | neargood | good | bad
        self._text = (0, "")  # (text nodes joined, their text)

    @cached_property
    def dom_path(self) -> str:
        return ".".join(e[0] for e in self._path)

    @cached_property
    def xpath(self) -> str:
        return "/" + "/".join(f"{e[0]}[{e[1]}]" for e in self._path)

    @property
    def text(self) -> str:
        if self._text[0] != len(self.text_nodes):
            joined = "".join(self.text_nodes)
            self._text = (len(self.text_nodes), normalize_whitespace(joined.strip()))
        return self._text[1]


# --- jusText's stoplist, looked up by identity --------------------------------------------

# The stoplists define_stoplist was given, by id, each with its lower-cased frozenset; the
# objects are kept here, so an id is never reused while it is a key. jusText's own cache
# holds 128 (one per language and then some).
_FROZEN_STOPLISTS: dict[int, tuple[tuple | frozenset, frozenset]] = {}


def stoplists_by_identity() -> None:
    """Make jusText's `define_stoplist` answer a stoplist it has seen by identity.

    jusText lower-cases a stoplist into a frozenset once, in an `lru_cache` keyed by the
    stoplist. trafilatura, with no target language, passes the union of jusText's 100
    stoplists: a tuple of 154,484 words, made once. CPython does not keep a tuple's hash,
    so every call hashes it again, reading 154,484 string objects spread over memory:
    ~0.5 ms a call in a tight loop, ~2.6 ms in a run, where they are out of the CPU's
    caches. trafilatura calls it 428 times on realpages' 3,913 pages. A tuple or frozenset
    cannot change, so the same object gets the same set. trafilatura CPU over those pages,
    the same text: 37.3 -> 36.2 s (means of 2 alternating rounds in one process); on 600
    of them with 110 calls, 5.58 -> 5.20 s. Anything else (a list, which jusText's cache
    refuses) goes to jusText's own function."""
    import justext.core

    if getattr(justext.core.define_stoplist, "__wrapped_stock__", None) is None:
        stock = justext.core.define_stoplist

        def define_stoplist(stoplist):
            if type(stoplist) not in (tuple, frozenset):  # mutable or unknown: jusText's way
                return stock(stoplist)
            known = _FROZEN_STOPLISTS.get(id(stoplist))
            if known is None:
                if len(_FROZEN_STOPLISTS) >= 128:
                    _FROZEN_STOPLISTS.clear()
                known = _FROZEN_STOPLISTS[id(stoplist)] = (stoplist, stock(stoplist))
            return known[1]

        define_stoplist.__wrapped_stock__ = stock
        justext.core.define_stoplist = define_stoplist
