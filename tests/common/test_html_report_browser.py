"""The pages in a real browser (headless Chromium through Selenium): no console error, every image
decoded and on screen, a screenshot that is not blank; and the checker catches each failure."""

from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest

from medimg.acne.report_page import NOT_SKIN_FLAG, grading_page
from medimg.common.html_report import Page, batch_index_page, write_html
from medimg.common.images import write_png
from medimg.mandible.report_page import segment_page
from medimg.oct_glands.report_page import extract_page
from tests.acne.test_report_page import REPORT as ACNE_REPORT
from tests.acne.test_report_page import record
from tests.browser import check_page_in_browser, headless_chromium, missing_browser_tools
from tests.mandible.test_report_page import report as mandible_report
from tests.oct_glands.test_report_page import summary as oct_summary

BROKEN_IMAGE = '<img src="data:image/png;base64,AAAA" alt="broken">'


@pytest.fixture(scope="module")
def browser():
    reason = missing_browser_tools()
    if reason is not None:
        pytest.skip(f"browser check needs Selenium, Chromium and chromedriver: {reason}")
    from selenium.common.exceptions import SessionNotCreatedException

    try:
        with headless_chromium() as driver:
            yield driver
    except SessionNotCreatedException as error:  # a chromedriver of another version than the browser
        pytest.skip(f"headless Chromium did not start: {error.msg}")


def texture(height: int, width: int, seed: int) -> np.ndarray:
    """A picture with structure (stripes on a gradient, not one flat colour), as the pipelines'
    images are, that compresses as well as they do (noise would make the page megabytes)."""
    rows, cols = np.mgrid[0:height, 0:width]
    stripes = 60 * np.sin((rows + 2 * cols) / (6.0 + seed))
    base = 60 + 100 * rows / height + stripes
    return np.clip(np.stack([base, base * 0.8 + 30, 200 - base * 0.5], axis=2), 0, 255).astype(np.uint8)


def assert_looks_right(result: dict, *, images: list[tuple[int, int]]) -> None:
    assert result["severe"] == []
    assert [(image["width"], image["height"]) for image in result["images"]] == images
    for image in result["images"]:
        assert image["decoded"] and image["error"] is None, image
        assert image["shown_width"] > 0 and image["shown_height"] > 0, image
    assert not result["blank"] and result["pixel_std"] > 10 and result["colours"] > 50


def page_file(tmp_path: Path, name: str, text: str) -> Path:
    return write_html(tmp_path / name, text)


def test_the_checker_reports_an_image_that_does_not_decode(tmp_path, browser):
    path = tmp_path / "broken.html"
    path.write_text(f"<!DOCTYPE html><html><body><h1>Broken</h1>{BROKEN_IMAGE}</body></html>")
    result = check_page_in_browser(path, driver=browser)
    (image,) = result["images"]
    assert not image["decoded"] and image["width"] == 0 and image["error"]


def test_the_checker_reports_a_console_error(tmp_path, browser):
    path = tmp_path / "error.html"
    path.write_text('<!DOCTYPE html><html><body><h1>Error</h1><script>console.error("x")</script></body></html>')
    result = check_page_in_browser(path, driver=browser)
    assert len(result["severe"]) == 1 and '"x"' in result["severe"][0]["message"]


def test_the_checker_reports_a_blank_page(tmp_path, browser):
    path = tmp_path / "blank.html"
    path.write_text("<!DOCTYPE html><html><body></body></html>")
    result = check_page_in_browser(path, driver=browser)
    assert result["blank"] and result["pixel_std"] == 0 and result["severe"] == []


def test_the_page_policy_blocks_an_external_image_and_the_checker_sees_it(tmp_path, browser):
    page = Page("Leaky")
    page.blocks.append('<img src="http://127.0.0.1:9/pixel.png" alt="external">')  # what the builders never write
    result = check_page_in_browser(page_file(tmp_path, "leaky.html", page.render()), driver=browser)
    assert any("Content Security Policy" in entry["message"] for entry in result["severe"])
    assert not result["images"][0]["decoded"]


def test_oct_extract_page_in_the_browser(tmp_path, browser):
    fingerprint = write_png(tmp_path / "fingerprint.png", texture(160, 200, 0))
    overlay = write_png(tmp_path / "bscan_overlay.png", texture(392, 200, 1))
    text = extract_page(oct_summary(), fingerprint_png=fingerprint, bscan_overlay_png=overlay)
    result = check_page_in_browser(page_file(tmp_path, "report.html", text), driver=browser)
    assert result["title"] == "OCT extract: fingers/<left> index.tif"
    assert_looks_right(result, images=[(200, 160), (200, 392)])
    assert 560 <= result["images"][0]["shown_width"] <= 564  # the small pore map is enlarged on screen (+ its border)


def test_acne_grading_page_in_the_browser(tmp_path, browser):
    records = [record(f"photos/p{i}.jpg", count=5 * i, grade=i % 4, lesions=5 * i, in_domain=i != 2) for i in range(5)]
    overlays = {r["file"]: write_png(tmp_path / f"p{i}_lesions.png", texture(600, 800, i)) for i, r in enumerate(records)}
    text = grading_page(records, overlays=overlays, report=ACNE_REPORT, failures=[("photos/broken.jpg", "not an image")])
    result = check_page_in_browser(page_file(tmp_path, "report.html", text), driver=browser)
    assert result["title"] == "Acne grading: 5 of 6 photos graded"
    assert_looks_right(result, images=[(360, 270)] * 5)
    assert text.count(f'<div class="flag">{NOT_SKIN_FLAG}</div>') == 1


def test_mandible_segment_page_in_the_browser(tmp_path, browser):
    overlay = write_png(tmp_path / "overlay.png", texture(772, 1030, 2))
    result = check_page_in_browser(page_file(tmp_path, "report.html", segment_page(mandible_report(), overlay_png=overlay)), driver=browser)
    assert result["title"] == "Mandible segmentation: ct/case <1>"
    assert_looks_right(result, images=[(1030, 772)])


def test_batch_index_page_in_the_browser_links_to_each_case(tmp_path, browser):
    cases = []
    for name in ("case 1", "case#2"):
        target = write_html(tmp_path / f"{name}_mandible" / "report.html", Page(name).render())
        cases.append({"name": name, "href": target.relative_to(tmp_path).as_posix(), "volume_ml": 91.25})
    text = batch_index_page("Mandible segment: 3 series", cases, [("case3", "expected a CT series, got no DICOM files")])
    result = check_page_in_browser(page_file(tmp_path, "index.html", text), driver=browser)
    assert result["severe"] == [] and result["images"] == [] and not result["blank"]
    targets = [Path(unquote(urlsplit(link).path)) for link in result["links"]]
    assert targets == [tmp_path / "case 1_mandible" / "report.html", tmp_path / "case#2_mandible" / "report.html"]
    assert all(target.is_file() for target in targets)
