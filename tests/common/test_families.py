"""Phantom families: ranges sample frozen parameters, which round-trip through JSON."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pytest

from medimg.common.errors import FormatError, InputError
from medimg.common.families import (
    Choice,
    IntRange,
    LogUniform,
    Uniform,
    draw,
    new_seed,
    params_from_dict,
    params_to_dict,
    read_params,
    sample_fields,
    write_params,
)

DRAWS = 2000


@dataclass(frozen=True)
class Blob:
    x: float
    y: float


@dataclass(frozen=True)
class ToyParams:
    size: float
    scale: float
    count: int
    kind: str
    blobs: tuple[Blob, ...]
    pair: tuple[int, float]
    seed: int
    label: Optional[str] = None
    focus: Blob | None = None


@dataclass(frozen=True)
class ToyFamily:
    size: Uniform = Uniform(1.0, 2.0)
    scale: LogUniform = LogUniform(0.1, 10.0)
    count: IntRange = IntRange(1, 3)
    kind: Choice = Choice(("round", "flat"))
    label: str | None = None  # a constant
    unused: Uniform = Uniform(0.0, 1.0)  # no field of that name in ToyParams

    def sample(self, rng: np.random.Generator) -> ToyParams:
        count = IntRange(1, 3).sample(rng)
        blobs = tuple(Blob(float(rng.uniform()), float(rng.uniform())) for _ in range(count))
        return sample_fields(self, ToyParams, rng, blobs=blobs, pair=(count, 0.5), seed=new_seed(rng))


@dataclass(frozen=True)
class Other:
    size: float


def test_uniform_samples_within_its_range():
    rng = np.random.default_rng(0)
    values = np.array([Uniform(-1.0, 3.0).sample(rng) for _ in range(DRAWS)])
    assert values.min() >= -1.0 and values.max() < 3.0
    assert values.min() < -0.9 and values.max() > 2.9
    assert values.mean() == pytest.approx(1.0, abs=0.1)
    assert all(isinstance(v, float) for v in values.tolist())
    assert Uniform(2.0, 2.0).sample(rng) == 2.0
    assert Uniform(0.0, 1.0).contains(1.0) and not Uniform(0.0, 1.0).contains(1.5)


def test_log_uniform_is_uniform_in_log_space():
    rng = np.random.default_rng(1)
    values = np.array([LogUniform(0.01, 100.0).sample(rng) for _ in range(DRAWS)])
    assert values.min() >= 0.01 and values.max() <= 100.0
    assert np.log10(values).mean() == pytest.approx(0.0, abs=0.15)
    assert np.mean(values < 1.0) == pytest.approx(0.5, abs=0.05)
    assert LogUniform(3.0, 3.0).sample(rng) == 3.0


def test_int_range_includes_both_ends():
    rng = np.random.default_rng(2)
    values = [IntRange(2, 4).sample(rng) for _ in range(DRAWS)]
    assert set(values) == {2, 3, 4}
    assert all(type(v) is int for v in values)
    assert IntRange(5, 5).sample(rng) == 5
    assert IntRange(2, 4).contains(4) and not IntRange(2, 4).contains(5)


def test_choice_samples_its_options_by_weight():
    rng = np.random.default_rng(3)
    values = [Choice(("a", "b", "c")).sample(rng) for _ in range(DRAWS)]
    assert set(values) == {"a", "b", "c"}
    weighted = [Choice(("a", "b", "c"), (1.0, 0.0, 3.0)).sample(rng) for _ in range(DRAWS)]
    assert set(weighted) == {"a", "c"}
    assert weighted.count("c") / DRAWS == pytest.approx(0.75, abs=0.05)
    assert Choice((1, 2)).contains(2) and not Choice((1, 2)).contains(3)


def test_a_choice_of_ranges_is_a_mixture_drawn_from_the_chosen_range():
    rng = np.random.default_rng(4)
    gap = Choice((Uniform(6.0, 12.0), Uniform(20.0, 28.0)))
    values = np.array([gap.sample(rng) for _ in range(DRAWS)])
    low, high = values < 12.0, values >= 20.0
    assert np.all(low | high) and np.all(values >= 6.0) and np.all(values < 28.0)
    assert low.mean() == pytest.approx(0.5, abs=0.06)
    assert gap.contains(25.0) and gap.contains(6.0) and not gap.contains(16.0)
    # constants among the options are returned as they are and draw nothing more
    mixed = Choice((Uniform(0.0, 1.0), 5.0), (0.0, 1.0))
    assert {mixed.sample(rng) for _ in range(20)} == {5.0}
    first, second = np.random.default_rng(9), np.random.default_rng(9)
    assert Choice(("a", "b")).sample(first) == Choice(("a", "b")).sample(second) and first.random() == second.random()


@pytest.mark.parametrize(
    "make",
    [
        lambda: Uniform(2.0, 1.0),
        lambda: Uniform(math.nan, 1.0),
        lambda: Uniform(0.0, math.inf),
        lambda: LogUniform(0.0, 1.0),
        lambda: LogUniform(-1.0, 1.0),
        lambda: IntRange(3, 2),
        lambda: Choice(()),
        lambda: Choice(("a", "b"), (1.0,)),
        lambda: Choice(("a", "b"), (-1.0, 2.0)),
        lambda: Choice(("a", "b"), (0.0, 0.0)),
    ],
    ids=["reversed", "nan", "inf", "log-zero", "log-negative", "int-reversed", "no-options",
         "too-few-weights", "negative-weight", "zero-weights"],
)
def test_bad_ranges_are_input_errors(make):
    with pytest.raises(InputError):
        make()


def test_draw_samples_ranges_and_passes_constants():
    rng = np.random.default_rng(4)
    assert draw(7, rng) == 7
    assert draw(None, rng) is None
    assert draw(Uniform, rng) is Uniform  # a class is a constant, not a range
    assert 0.0 <= draw(Uniform(0.0, 1.0), rng) < 1.0


def test_sample_fields_draws_the_shared_fields_plus_extra():
    params = ToyFamily().sample(np.random.default_rng(5))
    assert isinstance(params, ToyParams)
    assert 1.0 <= params.size < 2.0
    assert 0.1 <= params.scale <= 10.0
    assert params.count in (1, 2, 3)
    assert params.kind in ("round", "flat")
    assert params.label is None and params.focus is None
    assert 1 <= len(params.blobs) <= 3 and params.pair[1] == 0.5
    assert 0 <= params.seed < 2**31 - 1


def test_same_seed_gives_the_same_params():
    first = ToyFamily().sample(np.random.default_rng(42))
    again = ToyFamily().sample(np.random.default_rng(42))
    assert first == again
    others = {ToyFamily().sample(np.random.default_rng(seed)) for seed in range(5)}
    assert len(others) == 5


def test_params_round_trip_through_a_dict_with_nested_tuples_and_optionals():
    params = ToyParams(
        size=1.5, scale=np.float64(0.25), count=np.int64(2), kind="flat",
        blobs=(Blob(0.1, 0.2), Blob(0.3, 0.4)), pair=(2, 0.5), seed=11, label="x", focus=Blob(1.0, 2.0),
    )
    data = params_to_dict(params)
    assert data["type"] == "ToyParams"
    assert data["blobs"] == [{"x": 0.1, "y": 0.2}, {"x": 0.3, "y": 0.4}]
    assert data["focus"] == {"x": 1.0, "y": 2.0}
    assert type(data["scale"]) is float and type(data["count"]) is int
    through_json = json.loads(json.dumps(data))
    back = params_from_dict(ToyParams, through_json)
    assert back == params
    assert isinstance(back.blobs, tuple) and isinstance(back.blobs[0], Blob)
    assert isinstance(back.pair, tuple) and isinstance(back.focus, Blob)


def test_optional_fields_round_trip_as_none_and_may_be_left_out():
    params = ToyParams(1.0, 1.0, 1, "round", (), (1, 0.5), 0)
    data = json.loads(json.dumps(params_to_dict(params)))
    assert data["label"] is None and data["focus"] is None and data["blobs"] == []
    assert params_from_dict(ToyParams, data) == params
    del data["label"], data["focus"]
    assert params_from_dict(ToyParams, data) == params


def test_sampled_params_round_trip():
    params = ToyFamily().sample(np.random.default_rng(6))
    assert params_from_dict(ToyParams, json.loads(json.dumps(params_to_dict(params)))) == params


def test_a_dict_without_type_is_read_as_the_asked_type():
    assert params_from_dict(Other, {"size": 2.0}) == Other(2.0)


def test_wrong_type_is_a_format_error():
    data = params_to_dict(Other(2.0))
    with pytest.raises(FormatError, match="ToyParams.*'Other'"):
        params_from_dict(ToyParams, data)


def test_missing_fields_and_non_objects_are_format_errors():
    with pytest.raises(FormatError, match="size"):
        params_from_dict(Other, {"type": "Other"})
    with pytest.raises(FormatError):
        params_from_dict(Other, [1.0])
    data = params_to_dict(ToyParams(1.0, 1.0, 1, "round", (), (1, 0.5), 0, focus=Blob(0, 0)))
    data["blobs"] = [3.0]
    with pytest.raises(FormatError, match="Blob"):
        params_from_dict(ToyParams, data)


def test_params_to_dict_refuses_a_non_dataclass():
    with pytest.raises(InputError):
        params_to_dict({"size": 1.0})


def test_write_and_read_params_round_trip(tmp_path):
    params = ToyFamily().sample(np.random.default_rng(7))
    path = write_params(tmp_path / "sub" / "params.json", params)
    assert json.loads(path.read_text())["type"] == "ToyParams"
    assert read_params(path, ToyParams) == params


def test_read_params_of_a_missing_or_non_json_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_params(tmp_path / "none.json", ToyParams)
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(FormatError, match="not JSON"):
        read_params(bad, ToyParams)
