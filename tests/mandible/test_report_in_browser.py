"""`mandible segment`'s report.html in headless Chromium: the montage is there even without overlay.png."""

from typer.testing import CliRunner

from medimg.cli import app
from tests.test_reports_in_browser import assert_renders

runner = CliRunner()


def test_mandible_page_has_its_montage_even_without_the_png(synthetic_case, tiny_weights, tmp_path, browser):
    out = tmp_path / "seg"
    result = runner.invoke(app, ["mandible", "segment", str(synthetic_case / "dicom"), "-o", str(out), "--weights", str(tiny_weights),
                                 "--format", "nifti,html", "--device", "cpu"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split() == [str(out / "mask.nii.gz"), str(out / "report.html")]
    assert_renders(out / "report.html", browser, images=1)
