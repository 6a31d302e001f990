"""User text is rendered inert on every front-end.

Static: no front-end script (static/**/*.js, vendor excepted) turns a non-constant string into markup or
code (innerHTML/outerHTML assignments, insertAdjacentHTML, document.write, eval, new Function, string
timers, javascript: URLs, srcdoc, createContextualFragment, DOMParser). The front-ends build the DOM with
`static/common/dom.js` (`h()`/`fill()`: text nodes and textContent only; `on…=` and `style=` refused).

In a browser (test_markup_stays_text, marker `browser`): a meeting whose every text field holds markup
and script is opened on a tablet and on the console; nothing runs, no injected element appears, and the
text is shown as typed.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "static"

#: pattern -> why it is refused. A match is allowed only when the whole argument is one string literal.
SINKS = {
    r"\.(?:innerHTML|outerHTML)\s*\+?=\s*(?P<arg>[^;\n]+)": "markup from a string",
    r"\.insertAdjacentHTML\s*\(\s*[^,]+,\s*(?P<arg>[^)\n]+)\)": "markup from a string",
    r"\bdocument\.write(?:ln)?\s*\((?P<arg>[^)\n]*)\)": "document.write",
    r"\.createContextualFragment\s*\((?P<arg>[^)\n]*)\)": "markup from a string",
    r"\bnew\s+DOMParser\b(?P<arg>)": "markup parser",
    r"\.srcdoc\s*=\s*(?P<arg>[^;\n]+)": "markup in a frame",
    r"(?<![\w.])eval\s*\((?P<arg>[^)\n]*)\)": "code from a string",
    r"\bnew\s+Function\s*\((?P<arg>[^)\n]*)\)": "code from a string",
    r"\bset(?:Timeout|Interval)\s*\(\s*(?P<arg>[\"'`][^,\n]*)": "code from a string",
    r"(?P<arg>[\"'`]\s*javascript:)": "javascript: URL",
}
LITERAL = re.compile(r"""^\s*(?:"[^"\\$]*"|'[^'\\]*'|`[^`$\\]*`)\s*$""")


def _scripts() -> list[Path]:
    return sorted(p for p in STATIC.rglob("*.js") if "vendor" not in p.parts)


def _code(text: str) -> str:
    """The script without comments (a comment may name a sink to warn against it)."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"(?<![:\"'`\\])//[^\n]*", "", text)


def test_there_are_front_end_scripts():
    assert len(_scripts()) >= 10


@pytest.mark.parametrize("path", _scripts(), ids=lambda p: str(p.relative_to(STATIC)))
def test_no_markup_or_code_from_strings(path):
    code = _code(path.read_text(encoding="utf-8"))
    found = []
    for pattern, why in SINKS.items():
        for m in re.finditer(pattern, code):
            arg = m.group("arg")
            if arg and LITERAL.match(arg) and why.startswith("markup"):
                continue  # constant markup: no user text can reach it
            line = code.count("\n", 0, m.start()) + 1
            found.append(f"{path.relative_to(STATIC)}:{line}: {why}: {m.group(0).strip()[:100]}")
    assert not found, "\n".join(found)


def test_dom_helper_refuses_handlers_and_styles():
    dom = (STATIC / "common" / "dom.js").read_text(encoding="utf-8")
    assert 'k === "text") el.textContent' in dom
    assert 'k === "style") throw' in dom and 'k.startsWith("on")) throw' in dom
    assert "document.createTextNode(String(c))" in dom


# -- in a browser ------------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
XSS = [
    '<img src=x onerror="window.__xss=1">',
    "<script>window.__xss=2</script>",
    '<svg onload="window.__xss=3"></svg>',
    '"><b data-xss>bold</b>',
]


def _payload(i: int) -> str:
    return f"议题{i} " + XSS[i % len(XSS)]


@pytest.mark.browser
@pytest.mark.integration
def test_markup_stays_text(tmp_path):
    from tests.conftest import make_pdf, need
    from tests.live.server import ORG_PASSWORD, ORG_USER, LiveServer

    need(Path(CHROMIUM).exists(), f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    srv = LiveServer(tmp_path / "xss", worker=True)
    try:
        srv.prepare().start()
        tok = srv.login(ORG_USER, ORG_PASSWORD)
        mid = srv.ok("POST", "/api/v1/meetings", {"title": _payload(0), "location": _payload(1)}, tok, 201)[
            "id"
        ]
        seat = srv.ok(
            "POST", f"/api/v1/meetings/{mid}/attendees", {"name": _payload(2), "seat": "01"}, tok, 201
        )
        chair = srv.ok(
            "POST", f"/api/v1/meetings/{mid}/attendees", {"name": _payload(3), "role": "chair"}, tok, 201
        )
        srv.ok(
            "POST",
            f"/api/v1/meetings/{mid}/agenda",
            {"title": _payload(4), "description": _payload(5)},
            tok,
            201,
        )
        status, doc = srv.upload(
            f"/api/v1/meetings/{mid}/documents", "x.pdf", make_pdf(2), tok, title=_payload(6)
        )
        assert status == 202
        srv.wait_document(doc["id"], tok)
        srv.ok(
            "POST",
            f"/api/v1/meetings/{mid}/polls",
            {"title": _payload(7), "options": [_payload(8), _payload(9)]},
            tok,
            201,
        )
        srv.ok("POST", f"/api/v1/meetings/{mid}/start", None, tok)
        texts = [_payload(i) for i in (0, 2, 4, 6)]
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            try:
                pages = []
                ctx = browser.new_context()
                ctx.add_init_script(f"localStorage.setItem('meeting.org.token', {json.dumps(tok)});")
                for url in (
                    f"{srv.url}/organizer/#/m/{mid}/info",
                    f"{srv.url}/console/#meeting={mid}&org=1",
                    seat["join_url"],
                ):
                    page = ctx.new_page() if "/tablet/" not in url else browser.new_context().new_page()
                    page.goto(url)
                    pages.append(page)
                for page in pages:
                    page.wait_for_load_state("networkidle")
                    # The console renders after its socket's `state` arrives (not seen by "networkidle"):
                    # wait for the first typed text to show, bounded, instead of a fixed pause that a
                    # loaded machine overruns. A page that never shows one still fails below.
                    with contextlib.suppress(PlaywrightTimeout):
                        page.wait_for_function(
                            "ts => ts.some(t => document.body.innerText.includes(t))",
                            arg=texts,
                            timeout=20_000,
                        )
                    page.wait_for_timeout(300)
                    assert page.evaluate("window.__xss") is None, page.url
                    assert page.locator("img[src='x'], [data-xss], svg[onload]").count() == 0, page.url
                shown = [sum(t in page.inner_text("body") for t in texts) for page in pages]
                print(f"\nmarkup fields shown as text (organizer, console, tablet): {shown}")
                assert all(shown), "each front-end shows the texts as typed"
                assert chair  # the chair's name is on the console's seat grid
            finally:
                browser.close()
    finally:
        srv.stop()
