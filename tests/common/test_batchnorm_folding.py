import numpy as np
import pytest

torch = pytest.importorskip("torch")

from medimg.common.batchnorm_folding import fold_batchnorm  # noqa: E402


def _randomised_light_network():
    from medimg.oct_glands.models import build_model

    torch.manual_seed(0)
    network = build_model("light")
    for module in network.modules():  # running statistics far from the identity, so folding shows
        if isinstance(module, torch.nn.BatchNorm3d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    return network.eval()


def test_folded_network_gives_the_same_logits_without_any_batchnorm():
    network = _randomised_light_network()
    folded = fold_batchnorm(network)
    assert folded is not network
    assert not any(isinstance(m, torch.nn.BatchNorm3d) for m in folded.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm3d) for m in network.modules()) == 20  # 5 double blocks x 2 blocks x 2 BN, untouched
    x = torch.randn(2, 1, 16, 24, 16)
    with torch.inference_mode():
        expected, got, again = network(x), folded(x), network.eval()(x)
    assert got.shape == (2, 1, 16, 24, 16)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-4)
    assert float((expected - again).abs().max()) == 0.0  # the original still in eval mode, unchanged


def test_a_network_that_does_not_declare_the_order_is_left_alone():
    network = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    network.train()
    assert fold_batchnorm(network) is network
    assert not network.training  # inference needs eval mode either way
    assert isinstance(network[1], torch.nn.BatchNorm2d)
