import pytest
import torch

from medimg.acne.lesionnet import build_lesionnet
from medimg.common.errors import ModelError
from medimg.common.models import build_network, network_spec

TINY = {"widths": [4, 8, 8, 8], "decoder_width": 8}


def test_four_heads_at_stride_4():
    net = build_lesionnet(**TINY).eval()
    with torch.no_grad():
        count, grade, heatmap, size = net(torch.zeros(2, 3, 64, 96))
    assert count.shape == (2, 65) and grade.shape == (2, 4)
    assert heatmap.shape == (2, 1, 16, 24) and size.shape == (2, 2, 16, 24)
    # the focal-loss prior: about 1 % of cells start as lesion centres
    assert torch.sigmoid(heatmap).mean().item() == pytest.approx(0.01, abs=0.01)


def test_input_sides_must_be_multiples_of_32_and_options_known():
    net = build_lesionnet(**TINY)
    with pytest.raises(ModelError, match="multiples of 32"):
        net(torch.zeros(1, 3, 70, 64))
    with pytest.raises(ModelError, match="lesion options among widths, decoder_width"):
        build_lesionnet(depth=3)
    with pytest.raises(ModelError, match="at least 3 widths"):
        build_lesionnet(widths=[4, 8])


def test_registered_as_acne_lesion_and_rebuilt_from_its_config():
    spec = network_spec("acne-lesion")
    assert [head["name"] for head in spec.output["heads"]] == ["count", "grade", "heatmap", "size"]
    net = build_network("acne-lesion", TINY)
    assert spec.config_of(net) == TINY
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in build_lesionnet(**TINY).parameters())
