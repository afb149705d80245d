"""scripts/upgrade_weights_metadata.py: the header is rewritten, the tensors are not."""

import importlib.util
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file

from medimg.common.models import load_model

ROOT = Path(__file__).parents[1]
SHIPPED = ROOT / "medimg" / "weights" / "acne_lesion.safetensors"


def script():
    spec = importlib.util.spec_from_file_location("upgrade_weights_metadata", ROOT / "scripts" / "upgrade_weights_metadata.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_set_output_changes_the_answer_rule_and_keeps_the_tensors(tmp_path):
    upgrade = script()
    copy = tmp_path / "lesion.safetensors"
    shutil.copy(SHIPPED, copy)
    changes, paths = upgrade.parse_arguments(["--set-output", "count_from=detections", str(copy)])
    assert (changes, paths) == ({"count_from": "detections"}, [str(copy)])
    digest = upgrade.upgrade(copy, changes)
    loaded = load_model(copy)
    assert loaded.output["count_from"] == "detections" and loaded.output["threshold"] == load_model(SHIPPED).output["threshold"]
    assert loaded.metadata["epochs_trained"] == "18" and len(digest) == 64
    before, after = load_file(str(SHIPPED)), load_file(str(copy))
    assert before.keys() == after.keys() and all((before[key] == after[key]).all() for key in before)


def test_set_output_reads_json_values_and_checks_the_answer_rules():
    upgrade = script()
    changes, _ = upgrade.parse_arguments(["--set-output", "test_flip=false", "--set-output", "threshold=0.3", "--set-output", "grade_from=count"])
    assert changes == {"test_flip": False, "threshold": 0.3, "grade_from": "count"}
    with pytest.raises(SystemExit, match="expected count_from in ldl, detections, mean, got 'median'"):
        upgrade.parse_arguments(["--set-output", "count_from=median"])
    with pytest.raises(SystemExit, match="expected --set-output KEY=VALUE, got 'count_from'"):
        upgrade.parse_arguments(["--set-output", "count_from"])
