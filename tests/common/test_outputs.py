import os

import pytest

from medimg.common.errors import OutputError
from medimg.common.outputs import atomic_path, default_output_dir, prepare_output_dir, write_text_atomic


def test_exception_mid_write_leaves_no_file(tmp_path):
    target = tmp_path / "result.csv"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_text("half a ")
            raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_failed_rewrite_keeps_the_previous_file(tmp_path):
    target = write_text_atomic(tmp_path / "a.txt", "old")
    with pytest.raises(ValueError):
        with atomic_path(target) as temporary:
            temporary.write_text("new")
            raise ValueError
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_success_renames_onto_the_target_and_keeps_the_suffix(tmp_path):
    with atomic_path(tmp_path / "sub" / "vol.tif") as temporary:
        assert temporary.suffix == ".tif"
        assert temporary.parent == tmp_path / "sub"
        temporary.write_bytes(b"data")
    assert (tmp_path / "sub" / "vol.tif").read_bytes() == b"data"
    assert (tmp_path / "sub" / "vol.tif").stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["vol.tif"]


def test_refuses_to_overwrite_an_input(tmp_path):
    source = tmp_path / "scan.tif"
    source.write_bytes(b"precious")
    with pytest.raises(OutputError, match="different from the input"):
        write_text_atomic(source, "oops", inputs=[tmp_path / "." / "scan.tif"])
    assert source.read_bytes() == b"precious"


def test_default_output_dir_is_named_after_the_input(tmp_path):
    assert default_output_dir(tmp_path / "scan.tif", "oct") == tmp_path / "scan_oct"
    folder = tmp_path / "dicom_dir"
    folder.mkdir()
    assert default_output_dir(folder, "mandible") == tmp_path / "dicom_dir_mandible"
    assert prepare_output_dir(None, tmp_path / "scan.tif", "oct").is_dir()


def test_output_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "out").write_text("x")
    with pytest.raises(OutputError, match="expected an output folder"):
        prepare_output_dir(tmp_path / "out", tmp_path / "scan.tif", "oct")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
