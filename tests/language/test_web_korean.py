"""The page in Korean, in a real headless Chromium against a real server (skipped without Chromium): the
language switch relabels the page, including the not-a-diagnosis note, and the page shows what a Korean
query was searched as and which words were left out."""

from __future__ import annotations

from typing import Any

from tests.server.test_web import page, pytestmark  # noqa: F401 - the fixture and the Chromium skip are shared
from tests.server.test_web_page import until


def test_korean_page_labels_and_searched_as(page: tuple[Any, str]) -> None:  # noqa: F811
    browser_page, base = page
    browser_page.goto(base + "/")
    browser_page.wait_for_selector("#status:has-text('9 images indexed')")
    browser_page.select_option("#lang", "ko")
    browser_page.wait_for_selector("#status:has-text('영상 9개가 색인되어')")
    assert browser_page.inner_text("#search-form button") == "검색"
    assert browser_page.get_attribute("#q", "placeholder").startswith("찾는 소견")
    assert browser_page.evaluate("document.documentElement.lang") == "ko"
    browser_page.fill("#q", "폐렴이 있는 흉부 X-ray 양자역학")
    browser_page.press("#q", "Enter")
    browser_page.wait_for_selector("#searched-as:has-text('chest x-ray with pneumonia')")
    assert "양자역학" in browser_page.inner_text("#searched-as")
    assert browser_page.locator("#grid .card").count() == 9
    browser_page.click("#grid .card:nth-child(1)")
    browser_page.wait_for_selector("#label-set option[value='cxr-findings']", state="attached")

    def chosen() -> bool:  # a PNG without a modality gets no set by itself; the panel may reset it while it opens
        if browser_page.input_value("#label-set") != "cxr-findings":
            browser_page.select_option("#label-set", "cxr-findings")
        return "진단이 아닙니다" in (browser_page.text_content("#label-note") or "")

    until(browser_page, chosen, "the Korean label note")
    assert "폐렴" in browser_page.locator("#label-probs td:first-child").all_inner_texts()
    browser_page.select_option("#lang", "en")
    browser_page.wait_for_selector("#label-note:has-text('not a diagnosis')")
    assert browser_page.inner_text("#search-form button") == "Search"
    browser_page.reload()  # the query is in the URL, so the reloaded page searches again: its status is
    # "9 images indexed" only until those results arrive; either way it is English, as chosen
    browser_page.wait_for_selector("html[lang='en'] #status:text-matches('9 images indexed|9 results for')")
    assert browser_page.inner_text("#search-form button") == "Search"
