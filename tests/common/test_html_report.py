"""Self-contained HTML pages: escaped text, inlined (downscaled) images, no network, atomic writes."""

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medimg.common.batch import Failure
from medimg.common.errors import FormatError, InputError, OutputError
from medimg.common.html_report import (
    Card,
    Link,
    Page,
    batch_index_page,
    failure_pairs,
    format_value,
    inline_image,
    write_batch_index,
    write_html,
)
from medimg.common.images import write_png

SCRIPT_NAME = '<script>alert("x")</script>.png'


def decode_data_uri(uri: str) -> Image.Image:
    header, payload = uri.split(",", 1)
    assert header in ("data:image/png;base64", "data:image/jpeg;base64")
    image = Image.open(io.BytesIO(base64.b64decode(payload)))
    image.load()
    return image


def image_uris(page: str) -> list[str]:
    return re.findall(r'<img[^>]* src="(data:[^"]*)"', page)


def gradient(height: int, width: int) -> np.ndarray:
    rows = np.linspace(0, 255, height, dtype=np.float64)[:, None]
    cols = np.linspace(0, 255, width, dtype=np.float64)[None, :]
    return np.stack([np.broadcast_to(rows, (height, width)), np.broadcast_to(cols, (height, width)), np.full((height, width), 90.0)],
                    axis=2).astype(np.uint8)


def test_inline_image_of_an_array_downscales_to_max_edge_keeping_the_aspect():
    image = decode_data_uri(inline_image(gradient(400, 200), max_edge=100))
    assert image.format == "PNG" and image.size == (50, 100)


def test_inline_image_never_enlarges_and_keeps_pixels_of_a_png_exactly():
    pixels = gradient(30, 40)
    image = decode_data_uri(inline_image(pixels, max_edge=1024))
    assert image.size == (40, 30)
    assert np.array_equal(np.asarray(image.convert("RGB")), pixels)


def test_inline_image_of_a_file_as_jpeg(tmp_path):
    path = write_png(tmp_path / "photo.png", gradient(720, 960))
    uri = inline_image(path, max_edge=360, fmt="jpeg")
    assert uri.startswith("data:image/jpeg;base64,")
    image = decode_data_uri(uri)
    assert image.format == "JPEG" and image.size == (360, 270)
    # the thumbnail is still the picture: its mean colour matches the source's
    source_mean = gradient(720, 960).reshape(-1, 3).mean(axis=0)
    assert np.allclose(np.asarray(image, dtype=np.float64).reshape(-1, 3).mean(axis=0), source_mean, atol=4)


def test_inline_image_of_bytes_and_of_a_grey_array():
    buffer = io.BytesIO()
    Image.fromarray(gradient(64, 32)).save(buffer, format="PNG")
    assert decode_data_uri(inline_image(buffer.getvalue(), max_edge=16)).size == (8, 16)
    grey = decode_data_uri(inline_image(np.full((10, 20), 7, np.uint8)))
    assert grey.size == (20, 10) and np.asarray(grey.convert("L")).max() == 7


def test_inline_image_jpeg_of_rgba_is_composited_on_white():
    rgba = np.zeros((8, 8, 4), np.uint8)  # fully transparent
    image = decode_data_uri(inline_image(rgba, fmt="jpeg"))
    assert image.mode == "RGB" and np.asarray(image).min() >= 250


@pytest.mark.parametrize("bad, error", [
    (np.zeros((4, 4), np.float32), InputError),
    (np.zeros((4, 4, 2), np.uint8), InputError),
    (b"not an image", FormatError),
    (12, InputError),
])
def test_inline_image_refuses_what_is_not_an_image(bad, error):
    with pytest.raises(error, match="expected"):
        inline_image(bad)


def test_inline_image_refuses_a_missing_file_a_bad_format_and_a_bad_edge(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        inline_image(tmp_path / "missing.png")
    with pytest.raises(InputError, match="png, jpeg"):
        inline_image(gradient(4, 4), fmt="gif")
    with pytest.raises(InputError, match="max_edge"):
        inline_image(gradient(4, 4), max_edge=0)


def test_user_text_is_escaped_everywhere(tmp_path):
    page = Page(SCRIPT_NAME, subtitle=SCRIPT_NAME)
    page.heading(SCRIPT_NAME).paragraph(SCRIPT_NAME).key_values({SCRIPT_NAME: SCRIPT_NAME})
    page.table([{"file": SCRIPT_NAME}]).notes([SCRIPT_NAME]).failures([(SCRIPT_NAME, SCRIPT_NAME)])
    page.figure(gradient(8, 8), SCRIPT_NAME).grid([Card(gradient(8, 8), [SCRIPT_NAME], flag=SCRIPT_NAME, title=SCRIPT_NAME)])
    page.link_list([Link(SCRIPT_NAME, "a/report.html")])
    text = page.render()
    assert "<script" not in text
    escaped = '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;.png'
    assert text.count(escaped) >= 13
    assert f"<title>{escaped}</title>" in text


def test_key_values_formats_numbers_and_renders_nested_values_readably():
    text = Page("t").key_values({
        "volume_mm3": 52345.678, "fraction": 0.123456, "whole": 2.0, "tiny": 1.23456e-5, "count": 12,
        "closed": True, "box": None, "shape": [512, 256, 512],
        "window": {"level": 400, "width": 1800},
        "runs": [{"spacing_mm": 0.5, "first_slice": 0}, {"spacing_mm": 1.0, "first_slice": 40}],
        "long": list(range(40)),
    }).render()
    for shown in ("<td>52350</td>", "<td>0.1235</td>", "<td>2</td>", "<td>1.235e-05</td>", "<td>12</td>", "<td>yes</td>",
                  "<td>\u2014</td>", "<td>512, 256, 512</td>", "<th>level</th><td>400</td>", '<th class="number">first_slice</th>',
                  '<td class="number">40</td>', "15 \u2026 and 24 more"):
        assert shown in text, shown


@pytest.mark.parametrize("value, shown", [
    (52345.678, "52350"), (0.123456, "0.1235"), (1.5, "1.5"), (0.0, "0"), (-0.000123456, "-0.0001235"),
    (3e20, "3e+20"), (float("nan"), "\u2014"), (np.float32(0.25), "0.25"), (np.int64(7), "7"), (np.bool_(False), "no"),
])
def test_format_value(value, shown):
    assert format_value(value) == shown


def test_table_takes_columns_in_order_and_shows_missing_values_as_a_dash():
    text = Page("t").table([{"b": 1, "a": "x"}, {"a": "y"}], columns=["a", "b"]).render()
    head = re.search(r"<thead><tr>(.*?)</tr></thead>", text).group(1)
    assert head == '<th>a</th><th class="number">b</th>'  # a column of numbers is aligned right, header too
    assert '<td>x</td><td class="number">1</td>' in text and "<td>y</td><td>\u2014</td>" in text


def test_stage_times_add_up_to_the_total_with_shares():
    text = Page("t").stage_times({"read": 0.25, "infer": 1.5, "write": 0.75}).render()
    rows = re.findall(r"<tr(?: class=\"total\")?><th>([^<]*)</th><td class=\"number\">([^<]*)</td><td class=\"number\">([^<]*)</td>",
                      text)
    assert rows == [("read", "0.250", "10%"), ("infer", "1.500", "60%"), ("write", "0.750", "30%"), ("total", "2.500", "")]


def test_stage_times_refuse_what_is_not_seconds():
    with pytest.raises(InputError, match="non-negative numbers"):
        Page("t").stage_times({"read": "fast"})
    with pytest.raises(InputError, match="non-negative numbers"):
        Page("t").stage_times({"read": -1.0})


def test_figure_shows_a_small_image_enlarged_and_keeps_its_pixels():
    text = Page("t").figure(gradient(80, 160), "small").figure(gradient(600, 800), "large", max_edge=400).render()
    small, large = image_uris(text)
    assert decode_data_uri(small).size == (160, 80) and decode_data_uri(large).size == (400, 300)
    assert '<img class="enlarged" src="' in text and 'width="560" height="280" alt="small"' in text
    assert 'width="400" height="300" alt="large"' in text and text.count('class="enlarged"') == 1
    assert "<figcaption>small</figcaption>" in text and "<figcaption>large</figcaption>" in text


def test_grid_cards_show_lines_flag_and_a_placeholder_without_image():
    text = Page("t").grid([Card(gradient(720, 480), ["a.jpg", "moderate"]), Card(None, ["b.jpg"], flag="not a skin photo?")]).render()
    uris = image_uris(text)
    assert len(uris) == 1
    thumbnail = decode_data_uri(uris[0])
    assert thumbnail.format == "JPEG" and thumbnail.size == (240, 360)
    assert 'width="240" height="360"' in text
    assert text.count('class="card"') == 1 and text.count('class="card flagged"') == 1
    assert '<div class="flag">not a skin photo?</div>' in text and "no image" in text


def test_a_page_loads_nothing_from_the_network():
    page = Page("t").figure(gradient(16, 16), "f").grid([Card(gradient(16, 16), ["c"])]).link_list([Link("case", "c1/report.html")])
    text = page.render()
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//", text, re.IGNORECASE)
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text and "<link" not in text and "@import" not in text
    assert all(uri.startswith("data:image/") for uri in re.findall(r'src="([^"]*)"', text))
    assert "default-src 'none'; img-src data:" in text  # the browser would refuse anything else


@pytest.mark.parametrize("href", ["https://example.org/report.html", "http://x/y", "//host/report.html", "/abs/report.html", ""])
def test_links_must_be_relative_paths(href):
    with pytest.raises(InputError, match="relative to the page"):
        Page("t").link_list([Link("x", href)])


def test_links_are_percent_encoded_paths():
    text = Page("t").link_list([Link("odd", "scan #1 a:b_oct/report.html")]).render()
    assert '<a href="scan%20%231%20a%3Ab_oct/report.html">odd</a>' in text


def test_batch_index_links_each_case_and_lists_each_failure():
    cases = [
        {"name": "scan1", "href": "scan1_oct/report.html", "glands": 12, "volume_ml": 41.23456},
        {"name": "scan <2>", "href": "scan 2_oct/report.html", "glands": 7},
        {"name": "scan3", "href": None, "glands": 0},
    ]
    failures = [("bad.tif", "expected a 3-D volume, got 2-D"), ("gone.tif", "expected an existing file, got 'gone.tif'")]
    text = batch_index_page("OCT extract: 5 scans", cases, failures)
    assert re.findall(r'<a href="([^"]*)">([^<]*)</a>', text) == [("scan1_oct/report.html", "scan1"),
                                                                   ("scan%202_oct/report.html", "scan &lt;2&gt;")]
    assert "<td>scan3</td>" in text
    head = re.search(r"<thead><tr>(.*?)</tr></thead>", text).group(1)
    assert head == '<th>case</th><th class="number">glands</th><th class="number">volume_ml</th>'
    assert '<td class="number">41.23</td>' in text
    assert '<div class="notes failures"><h3>2 inputs failed</h3>' in text
    assert "<li>bad.tif: expected a 3-D volume, got 2-D</li>" in text
    assert "<li>gone.tif: expected an existing file, got &#x27;gone.tif&#x27;</li>" in text
    assert "3 succeeded, 2 failed" in text and "No failures." not in text


def test_batch_index_without_failures_says_so():
    text = batch_index_page("Mandible segment", [{"name": "case1", "href": "case1/report.html"}], [])
    assert '<p class="ok">No failures.</p>' in text and "notes failures" not in text


def test_write_batch_index_links_each_case_relative_to_the_index(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = Path("batch")
    first = write_html(out / "scan1_oct" / "report.html", Page("scan1").render())  # relative to the working folder
    second = write_html(tmp_path / "batch" / "scan 2_oct" / "report.html", Page("scan 2").render())  # absolute
    cases = [("scans/scan1.tif", first, {"pores": 12}), ("scans/scan 2.tif", second, {"pores": 7}), ("scans/scan4.tif", None, {"pores": 0})]
    index = write_batch_index(out, "OCT extract: 3 scans", cases, [Failure("scans/bad.tif", "expected a 3-D volume, got 2-D")])
    assert index == out / "index.html"
    text = index.read_text(encoding="utf-8")
    hrefs = re.findall(r'<a href="([^"]*)">', text)
    assert hrefs == ["scan1_oct/report.html", "scan%202_oct/report.html"]
    assert all((tmp_path / "batch" / href.replace("%20", " ")).is_file() for href in hrefs)
    assert "<td>scans/scan4.tif</td>" in text and "<li>scans/bad.tif: expected a 3-D volume, got 2-D</li>" in text


def test_failure_pairs_take_pairs_and_batch_failures():
    assert failure_pairs([("a.jpg", "bad"), Failure("b.jpg", "worse")]) == [("a.jpg", "bad"), ("b.jpg", "worse")]
    with pytest.raises(InputError, match="pairs"):
        failure_pairs(["a.jpg"])


def test_batch_index_refuses_a_case_without_a_name():
    with pytest.raises(InputError, match="'name'"):
        batch_index_page("t", [{"href": "x/report.html"}], [])


def test_write_html_is_atomic_and_refuses_to_overwrite_an_input(tmp_path):
    target = tmp_path / "out" / "report.html"
    text = Page("t \u00e9").render()
    assert write_html(target, text) == target
    assert target.read_text(encoding="utf-8") == text
    assert [path.name for path in target.parent.iterdir()] == ["report.html"]  # no temporary left beside it

    source = tmp_path / "scan.html"
    source.write_text("the input")
    with pytest.raises(OutputError, match="input"):
        write_html(source, text, inputs=[source])
    assert source.read_text() == "the input"


def test_write_html_leaves_the_old_page_whole_when_the_write_fails(tmp_path, monkeypatch):
    target = write_html(tmp_path / "report.html", "old page")

    def write_half_then_fail(self, data):
        with open(self, "wb") as handle:
            handle.write(data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", write_half_then_fail)
    with pytest.raises(OutputError, match="No space left"):
        write_html(target, Page("new").render())
    assert target.read_text() == "old page"
    assert [path.name for path in tmp_path.iterdir()] == ["report.html"]


def test_write_html_refuses_what_is_not_text(tmp_path):
    with pytest.raises(InputError, match="as text"):
        write_html(tmp_path / "report.html", b"<html></html>")
    assert not (tmp_path / "report.html").exists()
