"""Model zoo: every registered model builds, runs and back-propagates to its input, and matches
the reference DC/DSA/DM definitions (refdc/networks.py) in parameter count and tensor shapes."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn

from ddcore.models import ConvNet, UnknownNameError, create_model, list_models, model_descriptions

SHAPES = [(1, 28), (3, 32)]  # MNIST-like and CIFAR-like
REFERENCE = Path("/work/refdc/networks.py")

CONVNET_NAMES = {
    "convnet", "convnetd1", "convnetd2", "convnetd3", "convnetd4",
    "convnetw32", "convnetw64", "convnetw128", "convnetw256",
    "convnetas", "convnetar", "convnetal",
    "convnetnn", "convnetbn", "convnetln", "convnetin", "convnetgn",
    "convnetnp", "convnetmp", "convnetap",
}
OTHER_NAMES = {"mlp", "lenet", "alexnet", "alexnetbn", "vgg11", "vgg11bn", "resnet18", "resnet18bn", "resnet18bn_ap"}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registry_lists_names_and_descriptions() -> None:
    names = list_models()
    assert CONVNET_NAMES | OTHER_NAMES <= set(names)
    assert names == sorted(names)
    descriptions = model_descriptions()
    assert set(descriptions) == set(names)
    assert all(d and "\n" not in d for d in descriptions.values())


@pytest.mark.parametrize("channels,size", SHAPES, ids=["1x28", "3x32"])
@pytest.mark.parametrize("name", list_models())
def test_forward_backward_and_embed(name: str, channels: int, size: int) -> None:
    torch.manual_seed(0)
    model = create_model(name, in_channels=channels, num_classes=10, image_size=size)
    x = torch.randn(2, channels, size, size, requires_grad=True)
    out = model(x)
    assert out.shape == (2, 10)
    out.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    with torch.no_grad():
        features = model.embed(x)
    assert features.shape == (2, model.feature_dim)


# Hand arithmetic (weights + biases; instancenorm = GroupNorm(C, C) has 2C affine parameters):
#   ConvNet-3 on CIFAR-10: conv 3*128*9+128 = 3,584; two convs 128*128*9+128 = 147,584 each;
#     three norms 256 each; classifier 128*4*4*10+10 = 20,490  -> 320,010
#   ConvNet-3 on MNIST: first conv 1*128*9+128 = 1,280, rest as above     -> 317,706
#   ConvNetW32 on CIFAR-10: 896 + 2*9,248 + 3*64 + 32*4*4*10+10 = 5,130  -> 24,714
#   LeNet on MNIST: 156 + 2,416 + 400*120+120 + 120*84+84 + 84*10+10      -> 61,706
#   MLP on CIFAR-10: 3072*128+128 + 128*128+128 + 128*10+10               -> 411,146
@pytest.mark.parametrize(
    "name,channels,size,expected",
    [
        ("convnet", 3, 32, 320_010),
        ("convnet", 1, 28, 317_706),
        ("convnetw32", 3, 32, 24_714),
        ("lenet", 1, 28, 61_706),
        ("mlp", 3, 32, 411_146),
    ],
)
def test_parameter_counts_by_hand(name: str, channels: int, size: int, expected: int) -> None:
    assert n_params(create_model(name, channels, 10, size)) == expected


def _load_reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location("refdc_networks", REFERENCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Our registry name -> the reference's get_network settings (refdc/utils.py).
_REF_CONVNET = {
    "convnet": {},
    **{f"convnetd{d}": {"net_depth": d} for d in (1, 2, 3, 4)},
    **{f"convnetw{w}": {"net_width": w} for w in (32, 64, 128, 256)},
    "convnetas": {"net_act": "sigmoid"}, "convnetar": {"net_act": "relu"}, "convnetal": {"net_act": "leakyrelu"},
    "convnetaswish": {"net_act": "swish"}, "convnetaswishbn": {"net_act": "swish", "net_norm": "batchnorm"},
    "convnetnn": {"net_norm": "none"}, "convnetbn": {"net_norm": "batchnorm"}, "convnetln": {"net_norm": "layernorm"},
    "convnetin": {"net_norm": "instancenorm"}, "convnetgn": {"net_norm": "groupnorm"},
    "convnetnp": {"net_pooling": "none"}, "convnetmp": {"net_pooling": "maxpooling"},
    "convnetap": {"net_pooling": "avgpooling"},
}
_REF_OTHER = {
    "mlp": "MLP", "lenet": "LeNet", "alexnet": "AlexNet", "alexnetbn": "AlexNetBN", "vgg11": "VGG11",
    "vgg11bn": "VGG11BN", "resnet18": "ResNet18", "resnet18bn": "ResNet18BN",
    "resnet18bn_ap": "ResNet18BN_AP", "resnet18_ap": "ResNet18_AP",
}


def _reference_model(ref: ModuleType, name: str, channels: int, size: int) -> nn.Module:
    if name in _REF_OTHER:
        return getattr(ref, _REF_OTHER[name])(channel=channels, num_classes=10)
    settings = {"net_width": 128, "net_depth": 3, "net_act": "relu", "net_norm": "instancenorm",
                "net_pooling": "avgpooling", **_REF_CONVNET[name]}
    return ref.ConvNet(channel=channels, num_classes=10, im_size=(size, size), **settings)


@pytest.mark.skipif(not REFERENCE.exists(), reason="reference code /work/refdc not checked out")
@pytest.mark.parametrize("channels,size", SHAPES, ids=["1x28", "3x32"])
def test_matches_reference_definitions(channels: int, size: int) -> None:
    """Same parameter count and identical state_dict names and shapes (reference weights load)."""
    ref = _load_reference()
    table = {**_REF_CONVNET, **_REF_OTHER}
    assert set(table) <= set(list_models())
    for name in table:
        ours = create_model(name, channels, 10, size)
        theirs = _reference_model(ref, name, channels, size)
        assert n_params(ours) == n_params(theirs), name
        ours_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
        assert ours_shapes == {k: tuple(v.shape) for k, v in theirs.state_dict().items()}, name
        if name == "convnet":  # same weights give the same logits (no reference .view on torch 2.14)
            theirs.load_state_dict(ours.state_dict())
            x = torch.randn(2, channels, size, size)
            with torch.no_grad():
                expected = theirs.classifier(torch.flatten(theirs.features(x), 1))
                torch.testing.assert_close(ours(x), expected)


def test_unknown_name_suggests_close_match() -> None:
    with pytest.raises(UnknownNameError, match="convnet") as info:
        create_model("convnte", 3, 10, 32)
    assert "Did you mean" in str(info.value)
    assert isinstance(info.value, KeyError)


def test_convnet_options() -> None:
    model = create_model("convnet", 3, 10, 32, width=64, depth=2, norm="batchnorm",
                         activation="leakyrelu", pooling="maxpooling")
    kinds = [type(m) for m in model.features]
    assert kinds == [nn.Conv2d, nn.BatchNorm2d, nn.LeakyReLU, nn.MaxPool2d] * 2
    assert model.feature_dim == 64 * 8 * 8
    assert isinstance(create_model("convnetgn", 3, 10, 32).features[1], nn.GroupNorm)
    assert isinstance(create_model("convnetas", 3, 10, 32).features[2], nn.Sigmoid)
    assert create_model("convnetnp", 3, 10, 32).feature_dim == 128 * 32 * 32
    assert create_model("convnetln", 1, 10, 28).features[1].normalized_shape == (128, 32, 32)
    assert not any(isinstance(m, nn.GroupNorm) for m in create_model("convnetnn", 3, 10, 32).modules())
    # None means "the model's default", so a UI can pass unset fields straight through.
    assert create_model("convnet", 3, 10, 32, width=None, depth=None).feature_dim == 128 * 4 * 4
    assert create_model("convnetd1", 3, 10, 32, depth=1).feature_dim == 128 * 16 * 16
    with pytest.raises(ValueError, match="depth"):
        create_model("convnetd1", 3, 10, 32, depth=3)
    with pytest.raises(ValueError, match="instancenorm"):
        create_model("convnet", 3, 10, 32, norm="fancynorm")
    with pytest.raises(ValueError, match="divisible"):
        create_model("convnetgn", 3, 10, 32, width=30)
    with pytest.raises(ValueError, match="width"):
        create_model("mlp", 3, 10, 32, width=64)
    with pytest.raises(ValueError, match="colour"):
        create_model("convnetd2", 3, 10, 32, colour="red")


def test_embed_is_classifier_input() -> None:
    model = create_model("convnet", 3, 10, 32).eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.classifier(model.embed(x)), model(x))


@pytest.mark.parametrize(
    "channels,size,feature_dim",
    [(3, 16, 128 * 2 * 2), (3, 64, 128 * 8 * 8), (1, 16, 128 * 2 * 2), (3, 8, 128), (3, (24, 40), 128 * 3 * 5)],
)
def test_convnet_other_sizes(channels: int, size: int | tuple[int, int], feature_dim: int) -> None:
    model = create_model("convnet", channels, 7, size)
    assert model.feature_dim == feature_dim
    h, w = (size, size) if isinstance(size, int) else size
    assert model(torch.randn(2, channels, h, w)).shape == (2, 7)


@pytest.mark.parametrize("name", ["mlp", "lenet", "alexnet", "vgg11", "resnet18", "resnet18bn_ap"])
def test_other_models_at_64(name: str) -> None:
    model = create_model(name, 3, 5, 64)
    x = torch.randn(2, 3, 64, 64)
    assert model(x).shape == (2, 5)
    assert model.embed(x).shape == (2, model.feature_dim)


@pytest.mark.parametrize(
    "name,size,kwargs",
    [("convnet", 4, {}), ("convnetd4", 8, {}), ("lenet", 8, {}), ("alexnet", 4, {}), ("vgg11", 16, {}),
     ("resnet18", 16, {}), ("resnet18bn_ap", 4, {})],
)
def test_impossible_sizes_raise_clear_error(name: str, size: int, kwargs: dict) -> None:
    with pytest.raises(ValueError, match="too small"):
        create_model(name, 3, 10, size, **kwargs)


def test_direct_construction_and_tuple_size() -> None:
    model = ConvNet(1, 10, (28, 28), width=32, depth=2)
    assert model(torch.randn(1, 1, 28, 28)).shape == (1, 10)
    with pytest.raises(ValueError, match="image_size"):
        create_model("convnet", 3, 10, (32, 32, 3))
