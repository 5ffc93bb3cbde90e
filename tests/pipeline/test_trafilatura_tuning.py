"""The guards in front of trafilatura's re:test() calls give the answers the calls give.

The guarded expressions are compiled here from trafilatura's own, without installing them
(the change is process-wide; test_extract.py compares the child's text with stock
trafilatura's, in separate processes)."""

import re
import subprocess
import sys

import pytest
from lxml import etree
from trafilatura import settings as trafilatura_settings
from trafilatura import xpaths as trafilatura_xpaths
from trafilatura.utils import load_html

from pipeline import trafilatura_tuning as T
from tests.pipeline.test_extract import sample_html_pages

NAMESPACES = {"re": T.REGEXP_NS}


def trafilatura_expressions() -> list[etree.XPath]:
    """Every XPath expression with a re:test() call that trafilatura defines."""
    found = []
    for module in (trafilatura_xpaths, trafilatura_settings):
        for value in vars(module).values():
            for expression in value if isinstance(value, list) else [value]:
                if isinstance(expression, etree.XPath) and "re:test(" in expression.path:
                    found.append(expression)
    assert not any(id(e) in T._GUARDED for e in found)  # trafilatura's own, not ours
    return found


def re_test_calls() -> list[re.Match]:
    calls = {}
    for expression in trafilatura_expressions():
        for call in T.RE_TEST_CALL.finditer(expression.path):
            calls.setdefault(call.group(0), call)
    return list(calls.values())


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("(?:entry|article)-content|body-text", {"-content", "body-text"}),
        ("^[Cc]omment(?!ary)|comol|dsq-comments", {"omment", "comol"}),  # 'omment' covers dsq-
        ("(^|\\s)bottom|bottom(\\s|$)", {"bottom"}),
        ("post-?entry", {"entry"}),  # both runs are in every match: the longer one
        ("x(?:ab)+y", {"ab"}),
        ("^shar|[0-9]+", None),  # a branch with no literal
        ("a*", None),  # matches ''
        ("(?i)cookie", None),  # case-insensitive
    ],
)
def test_required_literals(pattern, expected):
    assert T.required_literals(pattern) == expected


def test_every_trafilatura_call_is_guarded_where_it_can_be():
    calls = re_test_calls()
    assert len(calls) >= 30  # trafilatura 2.3.1: 44 calls, 38 distinct
    for call in calls:
        guarded = T.guard_call(call)
        assert guarded.startswith("((") and guarded.endswith(f" and {call.group(0)})")
        etree.XPath(f"self::*[{guarded}]", namespaces=NAMESPACES)  # valid XPath
    contains = [c for c in calls if "contains(" in T.guard_call(c)]
    assert len(contains) >= len(calls) // 2  # most get literals, not just the attribute test


def attribute_values() -> list[str]:
    """id, class and style values of the bundled real pages, plus strings made to trip the
    guards: every literal of every call, in other case and with the characters that
    re.IGNORECASE folds to ASCII letters (Kelvin sign, long s, dotted and dotless i)."""
    values = {""}
    for html in sample_html_pages():
        tree = load_html(html)
        for element in tree.iter():
            values.update(element.get(a) or "" for a in ("id", "class", "style"))
    folds = str.maketrans({"k": "\u212a", "s": "\u017f", "i": "\u0130"})
    for call in re_test_calls():
        for literal in T.required_literals(call.group(2)) or ():
            for variant in (literal, literal.upper(), literal.title(), literal.translate(folds)):
                values.update({variant, f"x {variant}", f"{variant}-y", f"a{variant}b"})
        values.update({"cookie-banner", "COOKIE_CONSENT", "coo\u212aie-bar", "notice-coo\u212aie"})
    return sorted(values)


def elements(values: list[str]) -> etree._Element:
    """A root with, for each value, elements holding it in id, class, style, and in id or
    class next to another attribute (first or second), as re:test(@id|@class) reads the
    first."""
    root = etree.Element("root")
    for value, other in zip(values, values[1:] + values[:1], strict=True):
        for attributes in (
            {"id": value},
            {"class": value},
            {"style": value},
            {"id": value, "class": other},
            {"class": value, "id": other},
            {"style": other, "id": value},
        ):
            etree.SubElement(root, "div", attributes)
    return root


def test_each_guarded_call_answers_as_the_call_does():
    root = elements(attribute_values())
    assert len(root) > 6_000
    for call in re_test_calls():
        stock = etree.XPath(f"./*[{call.group(0)}]", namespaces=NAMESPACES)(root)
        guarded = etree.XPath(f"./*[{T.guard_call(call)}]", namespaces=NAMESPACES)(root)
        assert guarded == stock, call.group(0)


def test_guarded_expressions_find_the_same_elements_on_real_pages():
    trees = [load_html(html) for html in sample_html_pages()]
    found = 0
    for expression in trafilatura_expressions():
        guarded = etree.XPath(T.guarded_xpath(expression.path), namespaces=NAMESPACES)
        assert guarded.path != expression.path
        for tree in trees:
            stock = expression(tree)
            assert guarded(tree) == stock, expression.path[:80]
            found += len(stock)
    assert found > 100  # the expressions do match on these pages


def test_guard_regex_tests_replaces_the_expressions_trafilatura_uses():
    # In its own process: the change is process-wide.
    script = (
        "import sys, trafilatura\n"
        "from trafilatura import main_extractor, xpaths\n"
        "baseline = sys.modules['trafilatura.baseline']  # the name 'baseline' is a function\n"
        "from pipeline import trafilatura_tuning as T\n"
        "body, basic = xpaths.BODY_XPATH[0].path, baseline.BASIC_CLEAN_XPATH.path\n"
        "print(T.guard_regex_tests(), T.guard_regex_tests())\n"
        "print(baseline.BASIC_CLEAN_XPATH.path == T.guarded_xpath(basic),\n"
        "      trafilatura.settings.BASIC_CLEAN_XPATH is baseline.BASIC_CLEAN_XPATH,\n"
        "      xpaths.BODY_XPATH[0].path == T.guarded_xpath(body),\n"
        "      main_extractor.BODY_XPATH is xpaths.BODY_XPATH)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    counts, replaced = out.stdout.splitlines()
    first, second = map(int, counts.split())
    assert first >= 40 and second == 0  # trafilatura 2.3.1: 44 calls; a second call: none
    assert replaced == "True True True True"  # each module's name now holds the guarded one


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ("re:test(@id, 'a*')", "re:test(@id, 'a*')"),  # true on '': no guard
        ("re:test(@class, 'a(')", "re:test(@class, 'a(')"),  # not a pattern: lxml's error
        ("re:test(@class, '(?i)x|y')", "((@class) and re:test(@class, '(?i)x|y'))"),
        ("re:test(@id, 'x', 'i')", "((@id) and re:test(@id, 'x', 'i'))"),  # no literal guard
    ],
)
def test_calls_without_a_literal_guard(call, expected):
    assert T.guard_call(T.RE_TEST_CALL.search(call)) == expected


def justext_paragraphs(html: str) -> list[tuple]:
    """jusText's paragraphs of a page, classified as trafilatura's try_justext does, with
    everything the classifier and trafilatura read of them."""
    import justext
    from justext.core import ParagraphMaker, classify_paragraphs, revise_paragraph_classification

    paragraphs = ParagraphMaker.make_paragraphs(load_html(html))
    classify_paragraphs(paragraphs, justext.get_stoplist("English"), 50, 150, 0.1, 0.2, 0.25, True)
    revise_paragraph_classification(paragraphs, 150)
    return [
        (p.text, p.dom_path, p.xpath, p.is_heading, p.chars_count_in_links, p.tags_count)
        + (p.class_type, p.is_boilerplate, len(p), p.words_count)
        for p in paragraphs
    ]


def test_lazy_justext_paragraphs_are_justexts(monkeypatch):
    import justext.core
    from justext.paragraph import Paragraph

    pages = sample_html_pages()
    monkeypatch.setattr(justext.core, "Paragraph", Paragraph)
    stock = [justext_paragraphs(html) for html in pages]
    monkeypatch.setattr(justext.core, "Paragraph", T.LazyParagraph)
    lazy = [justext_paragraphs(html) for html in pages]
    assert lazy == stock
    assert sum(map(len, stock)) > 1_000  # paragraphs on the 39 pages
    assert {p[7] for page in stock for p in page} == {True, False}  # boilerplate and not


def test_a_lazy_paragraphs_text_follows_its_nodes():
    from justext.core import PathInfo
    from justext.paragraph import Paragraph

    path = PathInfo().append("body").append("p")
    stock, lazy = Paragraph(path), T.LazyParagraph(path)
    path.append("a")  # the path moves on; each paragraph keeps where it was opened
    assert (
        (lazy.dom_path, lazy.xpath) == (stock.dom_path, stock.xpath) == ("body.p", "/body[1]/p[1]")
    )
    assert lazy.text == stock.text == ""
    for node in ("  Hello\n", " world ", "\t!"):
        stock.append_text(node)
        lazy.append_text(node)
        assert lazy.text == stock.text and lazy.words_count == stock.words_count
    assert lazy.text == "Hello\nworld !"


def test_stoplists_by_identity_answer_as_jusText_does():
    # In its own process: the change is process-wide.
    script = (
        "import justext, justext.core as J\n"
        "from trafilatura.external import jt_stoplist_init\n"
        "from pipeline import trafilatura_tuning as T\n"
        "stock = J.define_stoplist\n"
        "every = jt_stoplist_init()  # what trafilatura passes: all languages' words, a tuple\n"
        "english = justext.get_stoplist('English')  # a frozenset\n"
        "T.stoplists_by_identity()\n"
        "T.stoplists_by_identity()  # a second call wraps nothing more\n"
        "fast = J.define_stoplist\n"
        "print(fast is not stock, fast.__wrapped_stock__ is stock)\n"
        "print(fast(every) == stock(every), fast(every) is fast(every), len(fast(every)))\n"
        "print(fast(english) == stock(english), fast(tuple(list(every))) == stock(every))\n"
        "print(fast(('The', 'OF')) == {'the', 'of'})\n"
        "try:\n"
        "    fast(['a'])\n"
        "except TypeError:\n"
        "    print('TypeError')  # a list: jusText's own answer (its cache cannot hash it)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    installed, every, others, small, a_list = out.stdout.splitlines()
    assert installed == "True True"
    same, cached, size = every.split()
    assert (same, cached) == ("True", "True") and int(size) > 100_000
    assert others == "True True" and small == "True" and a_list == "TypeError"
