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
    assert prepare_output_dir(None, tmp_path / "scan.tif", "oct") == tmp_path / "scan_oct"
    assert not (tmp_path / "scan_oct").exists()  # made by the first write, not before: no empty folder on failure


def test_output_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "out").write_text("x")
    with pytest.raises(OutputError, match="expected an output folder"):
        prepare_output_dir(tmp_path / "out", tmp_path / "scan.tif", "oct")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---- batch_output_dirs ----------------------------------------------------------------------


def test_batch_output_dirs_of_one_input_is_the_output_itself(tmp_path):
    from medimg.common.outputs import batch_output_dirs

    assert batch_output_dirs([tmp_path / "a" / "scan.tif"], tmp_path / "out", "oct") == [tmp_path / "out"]
    assert batch_output_dirs([tmp_path / "a" / "scan.tif"], None, "oct") == [tmp_path / "a" / "scan_oct"]


def test_batch_output_dirs_without_output_go_beside_each_input(tmp_path):
    from medimg.common.outputs import batch_output_dirs

    inputs = [tmp_path / "case1" / "scan.tif", tmp_path / "case2" / "scan.tif", tmp_path / "other.ome.tif"]
    assert batch_output_dirs(inputs, None, "oct") == [
        tmp_path / "case1" / "scan_oct", tmp_path / "case2" / "scan_oct", tmp_path / "other_oct",
    ]


def test_batch_output_dirs_inside_output_keep_distinct_names(tmp_path):
    from medimg.common.outputs import batch_output_dirs

    inputs = [tmp_path / "a.tif", tmp_path / "b.tif"]
    assert batch_output_dirs(inputs, tmp_path / "out", "oct") == [tmp_path / "out" / "a_oct", tmp_path / "out" / "b_oct"]


def test_batch_output_dirs_tell_same_named_inputs_apart_by_their_folder(tmp_path):
    from medimg.common.outputs import batch_output_dirs

    inputs = [tmp_path / "case1" / "scan.tif", tmp_path / "case2" / "scan.tif", tmp_path / "case1" / "other.tif"]
    assert batch_output_dirs(inputs, tmp_path / "out", "mandible") == [
        tmp_path / "out" / "case1_scan_mandible",
        tmp_path / "out" / "case2_scan_mandible",
        tmp_path / "out" / "other_mandible",
    ]


def test_batch_output_dirs_refuse_names_the_folder_cannot_tell_apart(tmp_path):
    from medimg.common.errors import InputError
    from medimg.common.outputs import batch_output_dirs

    same_folder_name = [tmp_path / "x" / "case" / "scan.tif", tmp_path / "y" / "case" / "scan.tif"]
    with pytest.raises(InputError, match="distinct names.*'case_scan_oct'"):
        batch_output_dirs(same_folder_name, tmp_path / "out", "oct")
    same_stem = [tmp_path / "scan.tif", tmp_path / "scan.ome.tif"]
    with pytest.raises(InputError, match="distinct names"):
        batch_output_dirs(same_stem, tmp_path / "out", "oct")
    # disambiguating by folder would land on a name another input already has
    clash = [tmp_path / "case1" / "scan.tif", tmp_path / "case2" / "scan.tif", tmp_path / "case1_scan.tif"]
    with pytest.raises(InputError, match="'case1_scan_oct'"):
        batch_output_dirs(clash, tmp_path / "out", "oct")


def test_a_killed_runs_part_files_are_removed_by_the_next_successful_write(tmp_path):
    import os

    from medimg.common.outputs import StagedOutput, write_text_atomic

    stale_file = tmp_path / ".pores.csv.abc123.part.csv"
    stale_file.write_text("half")
    stale_folder = tmp_path / ".case_oct.xyz.part"
    stale_folder.mkdir()
    (stale_folder / "glands.tif").write_text("half")
    other = tmp_path / ".other.csv.abc.part.csv"  # another output's leftover: not ours to remove
    other.write_text("x")
    for path in (stale_file, stale_folder, other):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    write_text_atomic(tmp_path / "pores.csv", "x,y\n")
    assert not stale_file.exists() and other.exists()
    staged = StagedOutput(tmp_path / "case_oct")
    staged.path("a.txt").write_text("done")
    staged.commit()
    assert not stale_folder.exists() and (tmp_path / "case_oct" / "a.txt").read_text() == "done"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.csv.abc.part.csv", "case_oct", "pores.csv"]
