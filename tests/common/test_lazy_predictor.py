import pytest

from medimg.common.errors import ModelError
from medimg.common.lazy_predictor import LazyPredictor


def test_the_loader_runs_once_on_first_use():
    calls = []

    def loader():
        calls.append(1)
        return (lambda batch: [2 * x for x in batch]), "weights.safetensors", "cpu"

    predictor = LazyPredictor(loader)
    assert calls == [] and predictor.provenance == ("not loaded", "n/a")
    assert predictor([1, 2]) == [2, 4]
    assert predictor([3]) == [6]
    assert calls == [1] and predictor.provenance == ("weights.safetensors", "cpu")


def test_a_failed_load_is_retried_and_keeps_the_unloaded_provenance():
    attempts = []

    def loader():
        attempts.append(1)
        raise ModelError("expected weights, got none")

    predictor = LazyPredictor(loader)
    for _ in range(2):
        with pytest.raises(ModelError, match="got none"):
            predictor.load()
    assert len(attempts) == 2 and predictor.provenance == ("not loaded", "n/a")
