"""Property test: whatever text a hostile file (or its name) puts into a result, the HTML
report gains no tag, attribute or URL that a benign result does not have.

Every string field that can come from the file or from a detector - file name, container
metadata, media fields, detector summaries, evidence, details, generator name, errors,
fusion rows - is filled with generated hostile text (HTML/JS/template syntax, quotes,
control and bidi characters). ``ANTIFAKE_REPORT_EXAMPLES`` (default 60) sets the count.
"""

from __future__ import annotations

import html.parser
import os
from typing import Any

import pytest

hypothesis = pytest.importorskip("hypothesis")
st = pytest.importorskip("hypothesis.strategies")

from antifake.report import render_report_html  # noqa: E402
from antifake.results import AnalysisResult, DetectorResult, GeneratorGuess  # noqa: E402

EXAMPLES = int(os.environ.get("ANTIFAKE_REPORT_EXAMPLES", "60"))

FRAGMENTS = [
    "<script>alert(1)</script>", "</pre>", "</td></tr></table>", "<img src=x onerror=f()>",
    '"', "'", "&", "&amp;", "&#x3C;", "{{ 7*7 }}", "{% for x in y %}", "{#", "javascript:",
    "<a href='javascript:x'>", "<!--", "-->", "<![CDATA[", "<svg onload=x>", "\u202e", "\0",
    "\x1b[31m", "</style>", "<style>*{}</style>", "<meta http-equiv=refresh content=0>",
    "<base href=//evil>", "<iframe srcdoc='<script>x</script>'>", "ø", "\n", " ",
]

hostile_text = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8)),
                        max_size=6).map("".join)
hostile_json = st.recursive(
    st.one_of(hostile_text, st.integers(), st.floats(allow_nan=False), st.none()),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(hostile_text, inner, max_size=3)),
    max_leaves=8,
)


class _Collector(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attrs: set[tuple[str, str]] = set()
        self.urls: list[str] = []
        self.comments = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            self.attrs.add((tag, name))
            if name in ("src", "href", "action", "srcdoc", "formaction"):
                self.urls.append(value or "")

    def handle_comment(self, data: str) -> None:
        self.comments += 1


def _result(text: dict[str, Any]) -> AnalysisResult:
    det = DetectorResult(
        detector=text["detector"], score=0.7, summary=text["summary"], kind="forensic",
        evidence=[text["evidence"], text["file"]], details={"version": text["version"],
                                                           "extra": text["details"]},
        generator=GeneratorGuess(family="other_ai", probability=0.5, name=text["gen"]),
    )
    failed = DetectorResult(detector="x" + text["detector"], score=None, summary="failed",
                            error={"code": "internal_error", "message": text["error"]})
    return AnalysisResult(
        file=text["file"], media_type="image", verdict="ai_generated", ai_probability=0.8,
        generator=GeneratorGuess(family=text["family"], probability=0.5, name=text["gen"]),
        detectors=[det, failed], engine_version="0", analyzed_at=text["when"],
        media={"format": text["format"], "mime": text["mime"], "codec": text["codec"],
               "width": 10, "height": 10,
               "metadata": {"probe": "<b>probe</b>", "hostile": text["metadata"]}},
        fusion={"method": text["method"], "basis": text["basis"], "opinions": text["details"]},
    )


FIELDS = ["detector", "summary", "evidence", "file", "version", "gen", "error", "family",
          "when", "format", "mime", "codec", "method", "basis"]
BENIGN: dict[str, Any] = {f: "plain" for f in FIELDS} | {
    "details": {"a": "b"}, "metadata": {"exif": {"Make": "Cam"}}}


def _shape(page: str) -> _Collector:
    c = _Collector()
    c.feed(page)
    c.close()
    return c


BASELINE = _shape(render_report_html(_result(BENIGN)))


@hypothesis.settings(max_examples=EXAMPLES, deadline=None, database=None,
                     suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(texts=st.fixed_dictionaries(
    {f: hostile_text for f in FIELDS} | {"details": hostile_json, "metadata": hostile_json}))
def test_hostile_strings_add_no_markup_to_the_report(texts: dict[str, Any]) -> None:
    page = render_report_html(_result(texts))
    shape = _shape(page)
    assert shape.tags <= BASELINE.tags, shape.tags - BASELINE.tags
    assert shape.attrs <= BASELINE.attrs, shape.attrs - BASELINE.attrs
    assert all(u.startswith(("data:", "#")) or u == "" for u in shape.urls), shape.urls
    assert shape.comments == BASELINE.comments
    assert "<script" not in page.lower()
    assert "&lt;b&gt;probe&lt;/b&gt;" in page  # the metadata path really was rendered
