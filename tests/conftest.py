import pytest

from medimg.common import console


@pytest.fixture(autouse=True)
def _reset_console():
    """CLI invocations set process-wide verbosity; every test starts from the defaults."""
    console.configure(quiet=False, debug=False)
    yield
    console.configure(quiet=False, debug=False)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium driven by Selenium, one per test module; skipped, saying what is missing,
    where Selenium, Chromium or chromedriver is not installed (.ci/run installs them)."""
    from tests.browser import headless_chromium, missing_browser_tools

    reason = missing_browser_tools()
    if reason is not None:
        pytest.skip(f"browser check needs Selenium, Chromium and chromedriver: {reason}")
    with headless_chromium() as driver:
        yield driver
