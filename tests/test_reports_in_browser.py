"""The HTML reports the commands really write, opened in headless Chromium: an OCT batch (index
page with its failure, one case page) and an acne grading grid (the mandible page: tests/mandible)."""

import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

from typer.testing import CliRunner

from medimg.cli import app
from tests.browser import (
    check_page_in_browser,
)

runner = CliRunner()
REAL_PHOTOS = Path(__file__).parent / "data" / "acne04_photos" / "JPEGImages"


def assert_renders(page: Path, browser, *, images: int) -> dict:
    checked = check_page_in_browser(page, driver=browser)
    assert checked["severe"] == []
    assert len(checked["images"]) == images and all(image["decoded"] for image in checked["images"])
    assert not checked["blank"]
    return checked


def test_oct_batch_index_and_case_page(tmp_path, browser):
    scans = []
    for seed in (1, 2):
        scans.append(tmp_path / f"p{seed}.tif")
        assert runner.invoke(app, ["oct", "synth", str(scans[-1]), "--shape", "80,112,80", "--seed", str(seed)]).exit_code == 0
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"not a tiff")
    result = runner.invoke(app, ["oct", "extract", str(scans[0]), str(broken), str(scans[1]), "--no-denoise", "-o", str(tmp_path / "out")])
    assert result.exit_code == 1

    index = assert_renders(tmp_path / "out" / "index.html", browser, images=0)
    linked = [Path(unquote(urlsplit(link).path)) for link in index["links"]]
    assert linked == [tmp_path / "out" / "p1_oct" / "report.html", tmp_path / "out" / "p2_oct" / "report.html"]
    assert all(path.is_file() for path in linked)
    text = (tmp_path / "out" / "index.html").read_text()
    assert "broken.tif" in text and "2 succeeded, 1 failed" in text
    assert_renders(linked[0], browser, images=2)  # pore map and B-scan overlays


def test_acne_grid_of_real_photos(tmp_path, browser):
    photos = tmp_path / "photos"
    shutil.copytree(REAL_PHOTOS, photos)
    result = runner.invoke(app, ["acne", "grade", str(photos), "--overlay", str(tmp_path / "marked"), "--device", "cpu"])
    assert result.exit_code == 0, result.stderr
    checked = assert_renders(tmp_path / "marked" / "report.html", browser, images=len(list(photos.iterdir())))
    assert all(image["width"] <= 360 for image in checked["images"])  # thumbnails, not the full photos

