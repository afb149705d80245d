"""Open an HTML page in real headless Chromium (Selenium 4) and say what a person would see:
console errors, images that did not decode, and whether the screenshot is blank.

Only the system's ``chromium`` and ``chromedriver`` are used: the driver's path is given to
Selenium, so selenium-manager never looks for (or downloads) a browser or a driver. The browser
runs with a fresh profile and its background networking off, so a test never reaches the network.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
BROWSER_ARGUMENTS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
)
WINDOW_WIDTH = 1280
#: tallest screenshot taken (px): a page of a hundred photos is cut there
MAX_SCREENSHOT_HEIGHT = 6000
#: a screenshot whose pixel standard deviation is at most this is blank (one flat colour)
BLANK_STD = 2.0
COLOURS_COUNTED = 256
PAGE_LOAD_SECONDS = 20
SCRIPT_SECONDS = 10

# Each image's decode() settles: resolved (it decoded) or rejected (broken data); the result is
# read from naturalWidth as well, which a broken image leaves at 0.
_DECODE_IMAGES = """
const done = arguments[arguments.length - 1];
const images = Array.from(document.images);
Promise.all(images.map((img) => img.decode().then(() => null, (error) => String(error)).then((error) => ({
    src: img.currentSrc.slice(0, 40),
    decoded: error === null && img.complete && img.naturalWidth > 0,
    width: img.naturalWidth,
    height: img.naturalHeight,
    shown_width: img.getBoundingClientRect().width,
    shown_height: img.getBoundingClientRect().height,
    error: error,
})))).then(done);
"""


def chromium_path() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def missing_browser_tools() -> str | None:
    """Why a browser test cannot run here (None when it can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    if chromium_path() is None:
        return f"no Chromium browser on PATH (looked for {', '.join(CHROMIUM_NAMES)})"
    if shutil.which("chromedriver") is None:
        return "no chromedriver on PATH (Debian: apt-get install chromium-driver)"
    return None


@contextmanager
def headless_chromium():
    """A Selenium Chrome driver on the system's Chromium, quit (and its profile removed) on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    reason = missing_browser_tools()
    if reason is not None:
        raise RuntimeError(reason)
    profile = tempfile.mkdtemp(prefix="medimg-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium_path()
    for argument in (*BROWSER_ARGUMENTS, f"--user-data-dir={profile}", f"--window-size={WINDOW_WIDTH},900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)
    try:
        driver.set_page_load_timeout(PAGE_LOAD_SECONDS)
        driver.set_script_timeout(SCRIPT_SECONDS)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot_stats(png: bytes) -> dict:
    """Pixel standard deviation and number of distinct colours (counted up to
    :data:`COLOURS_COUNTED`) of a screenshot; ``blank`` when it is flat."""
    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        rgb = image.convert("RGB")
    found = rgb.getcolors(COLOURS_COUNTED)  # None: more than that many
    colours = COLOURS_COUNTED + 1 if found is None else len(found)
    std = float(np.asarray(rgb, dtype=np.float32).std())
    return {"size": rgb.size, "pixel_std": std, "colours": colours, "blank": std <= BLANK_STD or colours <= 1}


def _check(driver, html_path: Path) -> dict:
    driver.get_log("browser")  # drop what an earlier page logged
    driver.set_window_size(WINDOW_WIDTH, 900)
    driver.get(Path(html_path).resolve().as_uri())
    images = driver.execute_async_script(_DECODE_IMAGES)
    links = driver.execute_script("return Array.from(document.links, (link) => link.href)")
    height = int(driver.execute_script("return Math.ceil(document.documentElement.scrollHeight)"))
    driver.set_window_size(WINDOW_WIDTH, max(300, min(height + 140, MAX_SCREENSHOT_HEIGHT)))  # + the window's frame
    screenshot = driver.get_screenshot_as_png()
    log = driver.get_log("browser")
    return {
        "title": driver.title,
        "severe": [entry for entry in log if entry.get("level") == "SEVERE"],
        "console": log,
        "images": images,
        "links": links,
        "screenshot": screenshot,
        **screenshot_stats(screenshot),
    }


def check_page_in_browser(html_path: Path | str, *, driver=None) -> dict:
    """Load ``html_path`` (as a ``file://`` URL) and report what the browser made of it.

    Parameters
    ----------
    html_path : the page
    driver : a driver from :func:`headless_chromium` to reuse; default: one started for this page

    Returns
    -------
    dict
        ``title``; ``severe``: console entries of level SEVERE (errors, blocked loads); ``console``:
        all entries; ``images``: per ``<img>``, ``decoded`` (bool), ``width`` and ``height``
        (natural), ``shown_width`` and ``shown_height`` (on screen), ``error``; ``links``: every
        link's absolute URL as the browser resolved it; ``screenshot``: PNG bytes of the page (up to :data:`MAX_SCREENSHOT_HEIGHT`);
        ``size``, ``pixel_std``, ``colours`` and ``blank`` of the screenshot.
    """
    if driver is not None:
        return _check(driver, Path(html_path))
    with headless_chromium() as own:
        return _check(own, Path(html_path))
