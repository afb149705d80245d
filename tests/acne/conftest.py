"""Fixtures of the acne integration tests: a tiny ACNE04 folder and seeded random weights."""

import json

import numpy as np
import pytest
from PIL import Image

# A fusion network small enough to train a step in well under a second on a CPU.
TINY_CONFIG = {
    "widths": [4, 4, 4, 4],
    "blocks": [1, 1, 1, 1],
    "embed_dim": 12,
    "depth": 1,
    "heads": 2,
    "mlp_ratio": 1.0,
    "patch_sizes": [16, 32],
    "se_reduction": 2,
}

# NNEW_test_0.txt of the tiny folder: (file, grade, count, grey level of the solid image).
# The last name's prefix says grade 0 but its grade column says 3: the column is the truth.
TEST_ENTRIES = (
    ("levle0_1.jpg", 0, 3, 30),
    ("levle1_2.jpg", 1, 10, 90),
    ("levle2_3.jpg", 2, 30, 150),
    ("levle0_4.jpg", 3, 60, 210),
)
TRAIN_ENTRIES = (("levle0_5.jpg", 0, 2), ("levle1_6.jpg", 1, 12), ("levle2_7.jpg", 2, 40), ("levle3_8.jpg", 3, 55))


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Run torch on one thread: the tiny networks here gain nothing from intra-op threads, and on a
    shared CPU the threads wait for each other (the training tests ran 3-5x slower with two)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_acne04(tmp_path):
    """An ACNE04 folder as the real one is laid out: JPEGImages/ and two-space separated split files."""
    root = tmp_path / "acne04"
    images = root / "JPEGImages"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, _, _, level in TEST_ENTRIES:
        Image.fromarray(np.full((64, 64, 3), level, np.uint8)).save(images / name, quality=95)
    for name, _, _ in TRAIN_ENTRIES:
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(images / name, quality=90)
    (root / "NNEW_test_0.txt").write_text("".join(f"{n}  {g}  {c}\n" for n, g, c, _ in TEST_ENTRIES))
    (root / "NNEW_trainval_0.txt").write_text("".join(f"{n}  {g}  {c}\n" for n, g, c in TRAIN_ENTRIES))
    return root


@pytest.fixture
def random_weights(tmp_path):
    """Seeded, untrained tiny fusion weights with their model_config, as training saves them."""
    import torch

    from medimg.acne.models import build_model, model_config
    from medimg.common.weights import save_weights

    torch.manual_seed(0)
    network = build_model("fusion", **TINY_CONFIG)
    metadata = {"model_config": json.dumps(model_config(network))}
    return save_weights(tmp_path / "tiny_fusion.safetensors", network.state_dict(), arch="acne-fusion", metadata=metadata)
