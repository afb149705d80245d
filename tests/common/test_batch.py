"""The batch policy: per-input errors are reported and skipped, model errors stop the batch."""

import pytest

from medimg.common.batch import Failure, run_batch
from medimg.common.errors import FormatError, InputError, ModelError, OutputError


def _runner(failing: dict, calls: list):
    def run_one(item):
        calls.append(item)
        if item in failing:
            raise failing[item]
        return item.upper()

    return run_one


def test_results_come_in_input_order(capsys):
    calls = []
    outcome = run_batch(["c", "a", "b"], _runner({}, calls))
    assert outcome.results == ["C", "A", "B"]
    assert calls == ["c", "a", "b"]
    assert outcome.failures == [] and outcome.total == 3 and outcome.exit_code == 0
    assert capsys.readouterr().err == ""


def test_an_input_error_is_reported_and_skipped(capsys):
    calls = []
    outcome = run_batch(["a", "b", "c"], _runner({"b": InputError("expected a TIFF, got a PNG")}, calls))
    assert calls == ["a", "b", "c"]
    assert outcome.results == ["A", "C"]
    assert outcome.failures == [Failure("b", "expected a TIFF, got a PNG")]
    assert outcome.exit_code == 1
    assert outcome.tally() == "1 of 3 inputs failed"
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["Error: b: expected a TIFF, got a PNG", "Error: 1 of 3 inputs failed"]


def test_output_and_format_errors_are_per_input_too(capsys):
    failing = {"a": OutputError("cannot write"), "c": FormatError("not a DICOM\nfile")}
    outcome = run_batch(["a", "b", "c"], _runner(failing, []), name_of=lambda item: f"<{item}>", noun="series")
    assert outcome.results == ["B"]
    assert [failure.item for failure in outcome.failures] == ["<a>", "<c>"]
    err = capsys.readouterr().err
    assert "Error: <a>: cannot write" in err
    assert "Error: <c>: not a DICOM file" in err  # newlines folded into one line
    assert err.strip().splitlines()[-1] == "Error: 2 of 3 series failed"


def test_a_model_error_stops_the_batch_at_once(capsys):
    calls = []
    with pytest.raises(ModelError, match="bad weights"):
        run_batch(["a", "b", "c"], _runner({"b": ModelError("bad weights")}, calls))
    assert calls == ["a", "b"]
    assert "Error" not in capsys.readouterr().err


def test_other_exceptions_stop_the_batch():
    calls = []
    with pytest.raises(ZeroDivisionError):
        run_batch(["a", "b", "c"], _runner({"a": ZeroDivisionError()}, calls))
    assert calls == ["a"]


def test_a_single_item_batch_reraises_its_input_error(capsys):
    error = InputError("expected a volume, got nothing")
    with pytest.raises(InputError) as info:
        run_batch(["only"], _runner({"only": error}, []))
    assert info.value is error
    assert capsys.readouterr().err == ""


def test_per_item_errors_and_progress_can_be_chosen(capsys):
    seen = []

    def progress(items):
        seen.append(list(items))
        return iter(items)

    outcome = run_batch([1, 2], lambda item: 1 / (item - 2),
                        per_item_errors=(ZeroDivisionError,), progress=progress)
    assert seen == [[1, 2]]
    assert outcome.results == [-1.0]
    assert outcome.failures[0].item == "2"
    assert outcome.exit_code == 1


def test_an_empty_batch_succeeds():
    outcome = run_batch([], lambda item: item)
    assert outcome.results == [] and outcome.total == 0 and outcome.exit_code == 0
    assert outcome.tally() == "0 of 0 inputs failed"
