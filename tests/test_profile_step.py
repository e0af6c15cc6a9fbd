"""benchmarks/profile_step.py reduces a real torch.profiler trace to issue #20's numbers: host syncs per step and
the normalisation / convolution shares."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from benchmarks.profile_step import kernel_family, summarise


def test_kernel_families_from_operator_and_kernel_names() -> None:
    assert kernel_family("aten::native_group_norm") == "norm"
    assert kernel_family("void at::native::(anonymous namespace)::RowwiseMomentsCUDAKernel<float>") == "norm"
    assert kernel_family("aten::_nnpack_spatial_convolution") == "conv"
    assert kernel_family("sm90_xmma_fprop_implicit_gemm_f32f32") == "conv"
    assert kernel_family("aten::add") == "other"


def test_a_profiled_conv_and_group_norm_are_counted_per_step() -> None:
    x = torch.randn(8, 3, 16, 16)
    w = torch.randn(16, 3, 3, 3)
    steps = 2
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            y = F.group_norm(F.conv2d(x, w, padding=1), 16)
            (y.relu() + 1).sum()
    out = summarise(prof.key_averages(), steps, "cpu")
    assert out["syncs_per_step"] == 0  # no device, nothing to wait for
    assert out["share"]["conv"] > 0 and out["share"]["norm"] > 0
    assert abs(sum(out["share"].values()) - 1) < 0.01
    by_name = {row["name"]: row for row in out["top"]}
    assert by_name["aten::native_group_norm"]["calls_per_step"] == 1
    assert out["time_per_step_ms"] > 0
