"""Language ID tests with the real lid.176.ftz (installed by `make install`) on real text."""

from __future__ import annotations

import pickle
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from fastwarc.warc import ArchiveIterator, WarcRecordType

from filters.langid import (
    LangIdBeforeExtractionStage,
    LangIdStage,
    declared_language,
    page_title,
)
from pipeline import assets
from pipeline import schema as S
from pipeline.config import LangIdConfig
from tests.helpers import doc_batch

DATA = Path(__file__).resolve().parents[1] / "data"
WET_SAMPLE = DATA / "sample" / "whatsinthebox-cc-main-2020-50.warc.wet.gz"
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
# 462 Tatoeba sentences in ~80 languages, labelled with CLD2 codes (CC BY 2.0).
TATOEBA = SHARED_DATA / "langid" / "commoncrawl-language-detection-cld2" / "tatoeba_long.txt"

# Common Crawl's WARC-Identified-Content-Language (CLD2, ISO 639-3) -> lid.176 label, for
# the languages the WET sample has documents in.
ISO3_TO_LID = {
    "ara": "ar", "dan": "da", "deu": "de", "ell": "el", "eng": "en", "fas": "fa",
    "fra": "fr", "heb": "he", "ind": "id", "ita": "it", "jpn": "ja", "lav": "lv",
    "nld": "nl", "nor": "no", "pol": "pl", "por": "pt", "rus": "ru", "spa": "es",
    "swe": "sv", "vie": "vi", "zho": "zh",
}  # fmt: skip
# CLD2 still writes the pre-1989 codes for Hebrew and Javanese; lid.176 uses today's.
CLD2_TO_LID = {"iw": "he", "jw": "jv"}

SENTENCES = {
    "en": "The committee will publish its annual report on the state of the railways next week.",
    "fr": "Le comité publiera la semaine prochaine son rapport annuel sur les chemins de fer.",
    "de": "Der Ausschuss veröffentlicht nächste Woche seinen Jahresbericht über die Eisenbahn.",
    "es": "El comité publicará la próxima semana su informe anual sobre los ferrocarriles.",
    "ru": "На следующей неделе комитет опубликует ежегодный доклад о состоянии железных дорог.",
    "zh": "委员会将于下周发布关于铁路状况的年度报告。",
    "ja": "委員会は来週、鉄道の状況に関する年次報告書を発表する予定です。",
    "ar": "ستنشر اللجنة تقريرها السنوي عن حالة السكك الحديدية الأسبوع المقبل.",
}  # fmt: skip


@cache
def stage(languages="all", min_score=0.65) -> LangIdStage:
    languages = languages if languages == "all" else list(languages)
    return LangIdStage(LangIdConfig(languages=languages, min_score=min_score))


def test_known_sentences():
    out = stage()(doc_batch(list(SENTENCES.values())))
    assert out[S.LANG].to_pylist() == list(SENTENCES)
    assert out.schema.field(S.LANG_SCORE).type == pa.float32()
    scores = out[S.LANG_SCORE].to_numpy()
    assert (scores >= 0.65).all() and (scores <= 1.0).all()
    assert out[S.DROP_REASON].null_count == len(SENTENCES)


def test_agrees_with_common_crawl_labels_on_the_wet_sample():
    """Documents Common Crawl labelled with one language get that language (~98%)."""
    labelled = []
    for record in ArchiveIterator(str(WET_SAMPLE), record_types=WarcRecordType.conversion):
        iso3 = record.headers.get("WARC-Identified-Content-Language")
        if iso3 in ISO3_TO_LID:
            labelled.append((ISO3_TO_LID[iso3], record.reader.read().decode("utf-8")))
    assert len(labelled) >= 170
    langs, scores = stage().predict([text for _, text in labelled])
    agree = sum(lang == expected for (expected, _), lang in zip(labelled, langs, strict=True))
    assert agree / len(labelled) >= 0.95, f"{agree}/{len(labelled)} agree with CLD2"
    assert scores.dtype == np.float32 and scores.max() <= 1.0


@pytest.mark.skipif(not TATOEBA.is_file(), reason=f"shared data not present: {TATOEBA}")
def test_tatoeba_accuracy():
    """Accuracy on Tatoeba sentences in the languages lid.176 knows (~92% measured)."""
    known = {label.removeprefix("__label__") for label in stage().model.get_labels()}
    rows = [line.rstrip("\n").split("\t") for line in TATOEBA.open(encoding="utf-8")][1:]
    expected, texts = [], []
    for cld2_code, _, _, text in rows:
        code = cld2_code.split("-")[0]  # zh-Hant -> zh
        code = CLD2_TO_LID.get(code, code)
        if code in known:  # leaves out Cuneiform, Gothic, Cherokee ... (30 of 462)
            expected.append(code)
            texts.append(text)
    langs, _ = stage().predict(texts)
    accuracy = np.mean(np.array(langs) == np.array(expected))
    assert len(texts) >= 430
    assert accuracy >= 0.88, f"tatoeba accuracy {accuracy:.3f} on {len(texts)} sentences"


def test_languages_list_and_min_score_set_drop_reasons():
    digits = "12345 67890"  # top label "en", score ~0.12
    texts = [SENTENCES["en"], SENTENCES["fr"], digits, SENTENCES["de"], None]
    batch = doc_batch(texts, [None, None, None, "no_text", None])
    out = stage(languages=("en", "fr"), min_score=0.65)(batch)
    assert out[S.LANG].to_pylist()[:2] == ["en", "fr"]
    # Dropped earlier or no text: not classified, reason untouched.
    assert out[S.LANG].to_pylist()[3:] == [None, None]
    assert out[S.LANG_SCORE].to_pylist()[3:] == [None, None]
    reasons = out[S.DROP_REASON].to_pylist()
    stages = out[S.DROP_STAGE].to_pylist()
    assert reasons[:2] == [None, None]
    assert reasons[2] == S.Reason.LANG_LOW_SCORE
    assert stages[2] == "langid"
    assert reasons[3:] == ["no_text", None] and stages[3] == "earlier"

    only_english = stage(languages=("en",), min_score=0.65)(batch)
    assert only_english[S.DROP_REASON].to_pylist()[1] == S.Reason.LANG_NOT_WANTED

    strict = stage(min_score=1.0)(doc_batch([SENTENCES["en"], SENTENCES["ja"]]))
    low = [score < 1.0 for score in strict[S.LANG_SCORE].to_pylist()]
    expected = [S.Reason.LANG_LOW_SCORE if is_low else None for is_low in low]
    assert strict[S.DROP_REASON].to_pylist() == expected and any(low)


def test_unwanted_language_wins_over_low_score():
    gibberish = "qx zv kk 12 vv"  # top label "en", score ~0.29
    out = stage(languages=("ja",), min_score=0.99)(doc_batch([gibberish]))
    assert out[S.DROP_REASON].to_pylist() == [S.Reason.LANG_NOT_WANTED]


def test_model_given_as_a_path():
    path = str(assets.lid_model_path())
    out = LangIdStage(LangIdConfig(model=path))(doc_batch([SENTENCES["de"]]))
    assert out[S.LANG].to_pylist() == ["de"]


def test_missing_model_names_the_key(tmp_path):
    with pytest.raises(FileNotFoundError, match="langid.model"):
        LangIdStage(LangIdConfig(model=str(tmp_path / "lid.218.bin")))


def test_stage_pickles_as_its_config():
    """Ray ships stage instances to workers; the model is loaded again there."""
    copy = pickle.loads(pickle.dumps(stage()))
    assert copy.cfg == stage().cfg
    assert copy(doc_batch([SENTENCES["ru"]]))[S.LANG].to_pylist() == ["ru"]


@pytest.mark.parametrize(
    "html, declared",
    [
        ('<!DOCTYPE html>\n<html lang="en-US" dir="ltr"><head>', "en"),
        ("<HTML LANG=de><body>", "de"),
        ("<html xmlns='http://www.w3.org/1999/xhtml' xml:lang='fr'>", "fr"),
        ('<html class="no-js" lang="zh-Hans">', "zh"),
        ('<html data-lang="en"><body lang="en">', None),  # not the root's own lang
        ("<html><body><p lang='en'>", None),
        ("<p>no root element</p>", None),
        ("<!--" + "x" * 30_000 + '--><html lang="en">', None),  # past the searched window
    ],
)
def test_declared_language_is_the_root_elements_primary_subtag(html, declared):
    assert declared_language(html) == declared


GERMAN_PAGE = """<!doctype html><html{lang}><head><title>Wetter</title></head><body><article>
<p>Das Wetter in Berlin bleibt in den kommenden Tagen wechselhaft. Nach einem sonnigen
Vormittag ziehen am Nachmittag dichte Wolken auf, und in der Nacht muss mit kräftigen
Regenschauern gerechnet werden. Die Temperaturen erreichen höchstens achtzehn Grad.</p>
<p>Der Deutsche Wetterdienst rät Autofahrern, auf den Straßen vorsichtig zu fahren, weil
es durch den Regen stellenweise zu Aquaplaning kommen kann.</p></article></body></html>"""


def html_batch(pages: dict[str, str]) -> pa.Table:
    """A raw batch of UTF-8 HTML responses, one per page, its id the key."""
    from tests.pipeline.test_extract import raw_batch

    rows = [
        {
            S.ID: key,
            S.RECORD_TYPE: "response",
            S.PAYLOAD: html.encode(),
            S.CONTENT_TYPE: "text/html; charset=utf-8",
        }
        for key, html in pages.items()
    ]
    return raw_batch(rows)


def column_by_id(batch: pa.Table, column: str) -> dict:
    return dict(zip(batch[S.ID].to_pylist(), batch[column].to_pylist(), strict=True))


def test_check_before_extraction_trusts_a_declared_wanted_language_only():
    """English wanted: a German page is dropped before extraction unless it declares
    English (then trafilatura's text decides, after extraction); declaring German earns
    no shortcut."""
    from pipeline.config import ExtractConfig

    declarations = {"none": "", "de": ' lang="de"', "en": ' lang="en-GB"'}
    pages = {key: GERMAN_PAGE.format(lang=lang) for key, lang in declarations.items()}
    stage = LangIdBeforeExtractionStage(LangIdConfig(languages=["en"]), ExtractConfig())
    try:
        out = stage(html_batch(pages))
    finally:
        stage.close()
    reasons = column_by_id(out, S.DROP_REASON)
    assert reasons == {"none": S.Reason.LANG_NOT_WANTED, "de": S.Reason.LANG_NOT_WANTED, "en": None}
    assert column_by_id(out, S.LANG) == {"none": "de", "de": "de", "en": None}


@pytest.mark.parametrize(
    "html, title",
    [
        ("<html><head><title>Weather in Berlin</title></head>", "Weather in Berlin"),
        (
            "<TITLE lang=en>\n  Fish &amp; Chips &#8211; a guide\n</TITLE>",
            "Fish & Chips \u2013 a guide",
        ),
        ("<title>First</title><svg><title>Second</title></svg>", "First"),
        ("<head><title></title></head>", ""),
        ("<html><body><p>no title</p>", ""),
        ("<script>" + "x" * 60_000 + "</script><title>Too far</title>", ""),  # past the window
    ],
)
def test_page_title_is_the_first_title_elements_text(html, title):
    assert page_title(html) == title


def test_check_before_extraction_skips_a_page_titled_in_a_wanted_language():
    """English wanted: the same German page, not declaring a language, is checked (and
    dropped) under a German title or a one-word one lid.176 is unsure of, and goes on to
    trafilatura untouched under a title lid.176 calls English at min_score or more."""
    from pipeline.config import ExtractConfig

    titles = {
        "german": "Das Wetter in Berlin bleibt wechselhaft",
        "unsure": "Wetter",  # lid.176: en at 0.12
        "english": "Weather forecast for Berlin this week",  # lid.176: en at 0.94
    }
    pages = {
        key: GERMAN_PAGE.format(lang="").replace("Wetter</title>", f"{t}</title>")
        for key, t in titles.items()
    }
    stage = LangIdBeforeExtractionStage(LangIdConfig(languages=["en"]), ExtractConfig())
    try:
        assert {key: stage.checks(html) for key, html in pages.items()} == {
            "german": True,
            "unsure": True,
            "english": False,
        }
        out = stage(html_batch(pages))
    finally:
        stage.close()
    assert column_by_id(out, S.DROP_REASON) == {
        "german": S.Reason.LANG_NOT_WANTED,
        "unsure": S.Reason.LANG_NOT_WANTED,
        "english": None,
    }


def test_a_declared_language_and_a_title_that_agree_drop_a_page_without_the_check():
    """English wanted: declaring German and titled in German (lid.176 at 0.8 or more),
    a page is dropped with the title's label and the resiliparse child never starts; a
    declaration and a title that disagree leave it to the check (or, for a title in a
    wanted language, to trafilatura's text)."""
    from pipeline.config import ExtractConfig

    german_title = "Das Wetter in Berlin bleibt wechselhaft"
    cases = {
        "agree": (' lang="de-DE"', german_title),
        "english title": (' lang="de"', "Weather forecast for Berlin this week"),
        "declared french": (' lang="fr"', german_title),
    }
    pages = {
        key: GERMAN_PAGE.format(lang=lang).replace("Wetter</title>", f"{title}</title>")
        for key, (lang, title) in cases.items()
    }
    stage = LangIdBeforeExtractionStage(LangIdConfig(languages=["en"]), ExtractConfig())
    try:
        labels = {key: stage.declared_and_titled(html) for key, html in pages.items()}
        assert labels["agree"][0] == "de" and labels["agree"][1] >= 0.8
        assert labels["english title"] is None and labels["declared french"] is None
        out = stage(html_batch({"agree": pages["agree"]}))
        assert stage.extractor._process is None  # no cheap text was made
        assert column_by_id(out, S.DROP_REASON) == {"agree": S.Reason.LANG_NOT_WANTED}
        assert column_by_id(out, S.LANG) == {"agree": "de"}
        out = stage(html_batch(pages))
    finally:
        stage.close()
    assert column_by_id(out, S.DROP_REASON) == {
        "agree": S.Reason.LANG_NOT_WANTED,
        "english title": None,  # the title rule: no check, trafilatura's text decides
        "declared french": S.Reason.LANG_NOT_WANTED,  # checked: German text
    }


def test_check_before_extraction_keeps_its_own_resiliparse_settings():
    """The check's cheap text leaves comments out whatever `extract.resiliparse` says: an
    English article under a longer German comment thread is not dropped as German."""
    from pipeline.config import ExtractConfig, ResiliparseConfig
    from pipeline.extract import TimedExtractor
    from tests.pipeline.test_extract import ARTICLE, raw_batch

    german = GERMAN_PAGE.split("<article>")[1].split("</article>")[0]
    page = ARTICLE.replace("</article>", f'</article><section id="comments">{german * 3}</section>')
    row = {S.ID: "a", S.RECORD_TYPE: "response", S.PAYLOAD: page.encode()}
    keep_comments = ResiliparseConfig(comments=True)

    stage = LangIdBeforeExtractionStage(
        LangIdConfig(languages=["en"]), ExtractConfig(resiliparse=keep_comments)
    )
    try:
        out = stage(raw_batch([{**row, S.CONTENT_TYPE: "text/html"}]))
    finally:
        stage.close()
    assert out[S.DROP_REASON].to_pylist() == [None]

    # with the comments in its text, the check would have called the page German
    extractor = TimedExtractor(ExtractConfig(extractor="resiliparse", resiliparse=keep_comments))
    try:
        [(text, _)] = extractor.extract_many([page])
    finally:
        extractor.close()
    [lang], [score] = LangIdStage(LangIdConfig(languages=["en"])).predict([text])
    assert lang == "de" and score >= 0.8
