"""IDC (multi-formation gradient matching) on tiny problems: decoding a known image by hand, the 'mix'
initialisation, the loss falls, checkpoint + resume equals an uninterrupted run, and evaluation trains on the
decoded images while the IPC counts stored ones."""
from __future__ import annotations

import pytest
import torch

from ddcore.data import LoadedDataset
from ddcore.methods import create_method, make_config
from ddcore.methods.matching import match_loss
from ddcore.multiformation import decode, decode_labels, encode_real, set_factor
from tests.methodkit import TINY_NET, straight_and_resumed, tiny_mnist


@pytest.fixture(scope="module")
def tiny() -> LoadedDataset:
    return tiny_mnist(20, 5)


def test_decoding_a_known_image_by_hand() -> None:
    quadrants = torch.tensor([[1.0, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]).view(1, 1, 4, 4)
    out = decode(quadrants, 2)
    assert out.shape == (4, 1, 4, 4)  # one stored image -> four, top-left first, row-major
    for k, value in enumerate([1.0, 2.0, 3.0, 4.0]):
        assert torch.equal(out[k], torch.full((1, 4, 4), value))
    ramp = torch.tensor([[0.0, 1, 5, 5], [0, 1, 5, 5], [5, 5, 5, 5], [5, 5, 5, 5]]).view(1, 1, 4, 4)
    # the cell [[0, 1], [0, 1]] grown to 4 wide, bilinear with half-pixel centres: 0, 0.25, 0.75, 1 in every row
    assert torch.allclose(decode(ramp, 2)[0, 0], torch.tensor([0.0, 0.25, 0.75, 1.0]).repeat(4, 1))
    assert decode(torch.zeros(2, 3, 5, 5), 2).shape == (8, 3, 5, 5)  # 5 = 3 + 3 - 1: padded, then cut
    assert decode_labels(torch.tensor([3, 7]), 2).tolist() == [3, 3, 3, 3, 7, 7, 7, 7]
    assert torch.equal(decode(quadrants, 1), quadrants)
    assert set_factor({"formation_factor": 3}) == 3 and set_factor({}) == 1 and set_factor(None) == 1


def test_mix_initialisation_decodes_back_to_its_real_images() -> None:
    """Four constant 'real' images shrunk into one stored image come back exactly (constants survive resizing)."""
    reals = torch.stack([torch.full((1, 6, 6), v) for v in (0.5, -1.0, 2.0, 3.0)])
    stored = encode_real(reals, 2)
    assert stored.shape == (1, 1, 6, 6)
    assert torch.allclose(decode(stored, 2), reals)


def make(data, seed=0, ipc=2, **overrides):
    settings = {"iterations": 12, "inner_loop": 2, "n_data": 32, "batch_real": 16, "lr_img": 0.05, "metric": "mse",
                **overrides}
    return create_method("idc", data, ipc, preset="paper", seed=seed, model_kwargs=TINY_NET, **settings)


def test_idc_loss_falls(tiny) -> None:
    m = make(tiny, init="noise", aug_type="none", inner_loop=4, lr_img=0.2)  # each iteration draws a new network:
    losses = [m.step()["loss"] for _ in range(12)]  # compare averages of several
    assert sum(losses[-4:]) < 0.8 * sum(losses[:4]), losses
    assert m.images.shape == (20, 1, 28, 28) and m.decoded().shape == (80, 1, 28, 28)


def test_idc_checkpoint_and_resume_equal_an_uninterrupted_run(tiny) -> None:
    straight, resumed = straight_and_resumed(lambda: make(tiny, seed=3, iterations=4), 4, 2)
    assert torch.equal(straight.images, resumed.images)


def test_evaluation_trains_on_the_decoded_images_and_counts_stored_ones(tiny) -> None:
    from ddcore.evaluation import evaluate

    s = make(tiny, ipc=1, iterations=1).synthetic()
    assert len(s) == 10 and s.meta.ipc == 1 and s.meta.config["formation_factor"] == 2
    result = evaluate(s, preset="quick", seeds=1, epochs=1, test_data=tiny, device="cpu", model_kwargs=TINY_NET)
    assert result.num_images == 40 and result.ipc == 1 and result.config["augmentation"] == "dsa"


def test_idc_distance_and_presets() -> None:
    real, syn = [torch.tensor([[1.0, -2.0]])], [torch.tensor([[0.0, 1.0]])]
    assert match_loss(syn, real, "l1").item() == pytest.approx(4.0)
    from ddcore.data import get_dataset_info

    mnist, cifar = get_dataset_info("mnist"), get_dataset_info("cifar10")
    paper = make_config("idc", mnist, 10, "paper")
    assert (paper.metric, paper.lr_img, paper.aug_type, paper.formation_factor, paper.iterations) == \
        ("l1", 1e-4, "color_crop", 2, 2000)
    assert make_config("idc", mnist, 10, "quick").iterations < paper.iterations
    assert (make_config("idc", cifar, 10, "paper").metric, make_config("idc", cifar, 10, "paper").n_data) == ("mse", 2000)


def test_the_page_decodes_uint8_images_as_the_engine_does() -> None:
    import numpy as np

    from ddcore.platform.bridge import decode_uint8

    u8 = np.zeros((1, 4, 4, 3), dtype=np.uint8)
    u8[0, :2, 2:] = 200  # top-right quadrant
    out = decode_uint8(u8, 2)
    assert out.shape == (4, 4, 4, 3) and out.dtype == np.uint8
    assert int(out[1].min()) == int(out[1].max()) == 200 and int(out[0].max()) == 0


def test_a_factor_below_one_is_named_and_a_mix_of_one_is_a_real_start(tiny: LoadedDataset) -> None:
    """formation_factor=0 once failed as "init must be 'real' or 'noise', not 'mix'"; with factor 1 (IDC-I) the
    default 'mix' start is the real start, image for image."""
    with pytest.raises(ValueError, match="formation_factor must be at least 1"):
        create_method("idc", tiny, 1, preset="quick", formation_factor=0, model_kwargs=TINY_NET)
    mixed = create_method("idc", tiny, 2, preset="quick", formation_factor=1, init="mix", model_kwargs=TINY_NET)
    real = create_method("idc", tiny, 2, preset="quick", formation_factor=1, init="real", model_kwargs=TINY_NET)
    assert torch.equal(mixed.images, real.images)
