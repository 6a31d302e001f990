"""Chinese and English: every text key exists in both, and both render in the browser."""

from __future__ import annotations

import re

import pytest

from tests.serverproc import REPO

from .conftest import build_room, shot

STATIC = REPO / "static"
# The ways a text key reaches the screen: t("k"), i18n: "k", titleKey: "k", okKey: "k", …
USES = re.compile(
    r"""(?:\bt\(|\bi18n:\s*|\btitleKey:\s*|\bokKey:\s*|"aria-label":\s*|\bprefixKey\b[^"]*|\bscreenMessage\()\s*"([a-z_]+\.[a-z0-9_]+)\""""
)
ATTRS = re.compile(r"""i18nAttrs:\s*\{[^}]*?:\s*"([a-z_]+\.[a-z0-9_]+)\"""")
SECOND = re.compile(r"""screenMessage\("[^"]+",\s*"([a-z_]+\.[a-z0-9_]+)\"""")
# Keys built at run time: prefix + a value from a closed set.
DYNAMIC = {
    "nav.": ["reader", "materials", "agenda", "vote", "speak", "service", "notices"],
    "conn.": ["connecting", "online", "offline", "refused"],
    "service.": ["water", "tea", "paper", "pen", "technician", "other"],
    "meeting.status_": ["draft", "live", "ended", "archived"],
    "docs.status_": ["processing", "ready", "failed"],
    "role.": ["organizer", "chair", "presenter", "secretary", "attendee", "observer"],
    "poll.status_": ["draft", "open", "closed", "cancelled"],
    "ann.": ["pen", "highlight", "eraser", "note"],
    "org.tab_": ["info", "agenda", "attendees", "documents", "polls", "run", "after"],
    "org.kind_": ["motion", "single", "multiple", "election", "rating"],
    "org.rule_": ["none", "simple", "two_thirds", "absolute", "present"],
}


def dictionaries() -> dict[str, set[str]]:
    text = (STATIC / "common" / "strings.js").read_text(encoding="utf-8")
    zh, en = text.split("\n  en: {", 1)
    key = re.compile(r'^\s+"([a-z_]+\.[a-z0-9_]+)":', re.M)
    return {"zh-CN": set(key.findall(zh)), "en": set(key.findall(en))}


def used_keys() -> set[str]:
    keys: set[str] = set()
    for path in STATIC.rglob("*.js"):
        if "vendor" in path.parts or path.name == "strings.js":
            continue
        src = path.read_text(encoding="utf-8")
        for rx in (USES, ATTRS, SECOND):
            keys.update(rx.findall(src))
    for prefix, names in DYNAMIC.items():
        keys.update(prefix + n for n in names)
    return keys


def test_both_languages_have_the_same_keys():
    d = dictionaries()
    assert d["zh-CN"] - d["en"] == set(), "keys without English"
    assert d["en"] - d["zh-CN"] == set(), "keys without Chinese"


def test_every_key_used_is_translated():
    d = dictionaries()
    used = used_keys()
    assert len(used) > 200
    used = {k for k in used if not k.endswith("_")}  # a prefix completed at run time (DYNAMIC)
    missing = sorted(k for k in used if k not in d["zh-CN"] or k not in d["en"])
    assert not missing, f"text keys used in static/ but missing from strings.js: {missing}"


def test_no_inner_html_in_front_ends():
    """User text (titles, names) reaches the DOM only as text: no innerHTML, outerHTML or insertAdjacentHTML."""
    bad = []
    for path in STATIC.rglob("*.js"):
        if "vendor" in path.parts:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write", line):
                bad.append(f"{path.relative_to(REPO)}:{n}")
    assert not bad, bad


def test_no_inline_scripts_or_styles_in_pages():
    """The CSP allows only 'self' scripts and styles: the HTML pages carry none inline."""
    for page in STATIC.glob("*/index.html"):
        html = page.read_text(encoding="utf-8")
        assert "<style" not in html and " style=" not in html, page
        for m in re.finditer(r"<script\b([^>]*)>(.*?)</script>", html, re.S):
            assert "src=" in m.group(1) and not m.group(2).strip(), page


@pytest.mark.browser
@pytest.mark.integration
def test_chinese_and_english_render(server, open_page):
    room = build_room(server, pages=2, names=("陈委员",))
    # English chosen on this device before joining.
    en = open_page(name="tablet-en", width=1280, height=800, lang="en")
    en.goto(room.seats[0]["join_url"])
    en.get_by_test_id("checkin-go").wait_for()
    assert en.get_by_test_id("checkin-go").inner_text() == "Check in"
    en.get_by_test_id("checkin-later").click()
    en.get_by_test_id("checkin-badge").filter(has_text="Not checked in").wait_for()
    assert en.get_by_test_id("nav-materials").inner_text().strip() == "Materials"
    assert en.evaluate("document.documentElement.lang") == "en"
    assert en.get_by_test_id("who").inner_text().startswith("陈委员")  # names stay as written
    shot(en, "tablet-english")
    # Switch to Chinese on the spot; the choice is kept for this device.
    en.get_by_test_id("lang-switch").click()
    en.get_by_test_id("checkin-badge").filter(has_text="未签到").wait_for()
    assert en.get_by_test_id("nav-materials").inner_text().strip() == "资料"
    assert en.evaluate("localStorage.getItem('meeting.lang')") == "zh-CN"
    en.reload()
    en.get_by_test_id("checkin-later").click()
    assert en.get_by_test_id("nav-agenda").inner_text().strip() == "议程"
    # Numbers and dates go through Intl in the chosen language.
    assert en.evaluate("new Intl.NumberFormat('en').format(1234.5)") == "1,234.5"
    org = open_page(name="organizer-en", width=1280, height=800, lang="en")
    org.goto(server.url + "/organizer/")
    assert org.get_by_test_id("login-submit").inner_text() == "Log in"
    shot(org, "organizer-login-english")
    assert not en.errors and not org.errors
