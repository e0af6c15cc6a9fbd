"""Model zoo: every registered model builds, runs and back-propagates to its input, and matches
the reference DC/DSA/DM definitions (VICO-UoE/DatasetCondensation networks.py) in parameter count and sizes."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from ddcore.models import ConvNet, UnknownNameError, create_model, list_models, model_descriptions

SHAPES = [(1, 28), (3, 32)]  # MNIST-like and CIFAR-like

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


# Facts implied by the reference code, github.com/VICO-UoE/DatasetCondensation at 53f63a6: networks.py (the classes)
# and utils.py (`get_network`: the ConvNet variants are ConvNet(width 128, depth 3, relu, instancenorm, avgpooling)
# with one setting changed, e.g. ConvNetD4 = depth 4, ConvNetLN = layernorm, ConvNetNP = no pooling; 'resnet18_ap'
# is networks.py's ResNet18_AP, which get_network does not list). Each number was counted twice: by building the
# reference classes themselves (outside this repo) and by hand arithmetic from their definitions:
#   ConvNet-W-D: convs c*W*9+W, then W*W*9+W; each instancenorm/groupnorm/batchnorm 2W, layernorm 2*W*H*W_map; the
#     reference turns 28x28 into 32x32 (1-channel first conv padding 3), so 1x28 and 3x32 both end at (32/2^D)^2;
#     classifier W*(32/2^D)^2*10+10 (no pooling: W*32*32*10+10).
#   MLP: (28*28*1 or 32*32*3)*128+128 + 128*128+128 + 128*10+10. LeNet: c*6*25+6 + 6*16*25+16 + 400*120+120
#     + 120*84+84 + 84*10+10. AlexNet: convs c-128 (5x5), 128-192 (5x5), 192-256, 256-192, 192-192 (3x3), fc 3072*10+10
#     (BN: +2*960). VGG11: convs c-64-128-256-256-512-512-512-512 (3x3, bias) each with a 2C norm, fc 512*10+10.
#   ResNet18: bias-free convs, 2C per norm, 1x1 shortcut where the planes change; plain ResNets end with
#     avg_pool2d(4) -> 512 features; the _AP variants classify 512*3*3 (28x28) or 512*4*4 (32x32).
# Columns: parameters on 1x28, parameters on 3x32, embed (classifier input) size on 1x28 and on 3x32, and the
# number of state_dict entries (the same for both inputs; batchnorm adds running_mean/var/num_batches_tracked).
REFERENCE_FACTS: dict[str, tuple[int, int, int, int, int]] = {
    "convnet": (317_706, 320_010, 2048, 2048, 14),
    "convnetd1": (329_226, 331_530, 32768, 32768, 6),
    "convnetd2": (231_306, 233_610, 8192, 8192, 10),
    "convnetd3": (317_706, 320_010, 2048, 2048, 14),
    "convnetd4": (450_186, 452_490, 512, 512, 18),
    "convnetw32": (24_138, 24_714, 512, 512, 14),
    "convnetw64": (85_130, 86_282, 1024, 1024, 14),
    "convnetw128": (317_706, 320_010, 2048, 2048, 14),
    "convnetw256": (1_225_226, 1_229_834, 4096, 4096, 14),
    "convnetas": (317_706, 320_010, 2048, 2048, 14),
    "convnetar": (317_706, 320_010, 2048, 2048, 14),
    "convnetal": (317_706, 320_010, 2048, 2048, 14),
    "convnetaswish": (317_706, 320_010, 2048, 2048, 14),
    "convnetaswishbn": (317_706, 320_010, 2048, 2048, 23),
    "convnetnn": (316_938, 319_242, 2048, 2048, 8),
    "convnetbn": (317_706, 320_010, 2048, 2048, 23),
    "convnetln": (661_002, 663_306, 2048, 2048, 14),
    "convnetin": (317_706, 320_010, 2048, 2048, 14),
    "convnetgn": (317_706, 320_010, 2048, 2048, 14),
    "convnetnp": (1_607_946, 1_610_250, 131072, 131072, 14),
    "convnetmp": (317_706, 320_010, 2048, 2048, 14),
    "convnetap": (317_706, 320_010, 2048, 2048, 14),
    "mlp": (118_282, 411_146, 128, 128, 6),  # reference has no MLP embed: ours is the last hidden layer
    "lenet": (61_706, 62_006, 84, 84, 10),  # reference has no LeNet embed: ours is the 84-unit layer
    "alexnet": (1_865_802, 1_872_202, 3072, 3072, 12),
    "alexnetbn": (1_867_722, 1_874_122, 3072, 3072, 37),
    "vgg11": (9_229_962, 9_231_114, 512, 512, 34),
    "vgg11bn": (9_229_962, 9_231_114, 512, 512, 58),
    "resnet18": (11_172_810, 11_173_962, 512, 512, 62),
    "resnet18bn": (11_172_810, 11_173_962, 512, 512, 122),
    "resnet18_ap": (11_213_770, 11_250_762, 4608, 8192, 62),
    "resnet18bn_ap": (11_213_770, 11_250_762, 4608, 8192, 122),
}


def test_reference_facts_cover_the_registry() -> None:
    assert set(REFERENCE_FACTS) == set(list_models())


@pytest.mark.parametrize("name", sorted(REFERENCE_FACTS))
def test_matches_reference_definitions(name: str) -> None:
    """Parameter count, classifier input size and state_dict size of the reference architecture."""
    params_28, params_32, embed_28, embed_32, entries = REFERENCE_FACTS[name]
    for (channels, size), params, embed in zip(SHAPES, (params_28, params_32), (embed_28, embed_32)):
        model = create_model(name, channels, 10, size)
        assert (n_params(model), model.feature_dim, len(model.state_dict())) == (params, embed, entries), (
            name, channels, size)


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
