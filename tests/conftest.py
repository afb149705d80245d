import pytest

from medimg.common import console


@pytest.fixture(autouse=True)
def _reset_console():
    """CLI invocations set process-wide verbosity; every test starts from the defaults."""
    console.configure(quiet=False, debug=False)
    yield
    console.configure(quiet=False, debug=False)
