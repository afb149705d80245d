"""Seconds per stage for run reports."""

import time

import pytest

from medimg.common.clock import StageClock


def test_a_stage_entered_twice_adds_up():
    clock = StageClock()
    for _ in range(2):
        with clock.stage("predict"):
            time.sleep(0.01)
    with clock.stage("write"):
        time.sleep(0.005)
    assert list(clock.seconds) == ["predict", "write"]
    assert clock.seconds["predict"] >= 0.02
    assert clock.seconds["write"] >= 0.005
    assert clock.seconds["predict"] < 1.0
    assert clock.total == pytest.approx(clock.seconds["predict"] + clock.seconds["write"], abs=1e-3)


def test_a_stage_that_raises_is_still_recorded():
    clock = StageClock()
    with pytest.raises(RuntimeError, match="boom"):
        with clock.stage("load"):
            time.sleep(0.005)
            raise RuntimeError("boom")
    assert clock.seconds["load"] >= 0.005


def test_a_new_clock_is_empty():
    clock = StageClock()
    assert clock.seconds == {} and clock.total == 0


def test_announce_names_each_stage_on_stderr(capsys):
    clock = StageClock(announce=True)
    with clock.stage("read"):
        pass
    assert capsys.readouterr().err.strip() == "[read]"
    with StageClock().stage("quiet"):
        pass
    assert capsys.readouterr().err == ""
