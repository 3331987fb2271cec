"""Attention kernels inside the real streams: PyTorch's SDPA vs the explicit matmul-softmax-matmul.

    python bench/attention.py [--preset small]

Times one stream pass over 8 masked copies of an image (what the fast Score-CAM runs), without
autograd and with the gradient taken back to the masks, with every attention layer forced to SDPA
or to the explicit form, in float32 and bf16 weights. ``forensic.backbones.attend`` picks the
explicit form only where it measured faster: on the CPU, in bf16/fp16, while autograd records
(PyTorch's CPU flash-attention backward is slow there). Medians of 5 runs; random weights.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, median_time, random_config  # noqa: E402

import forensic.backbones as backbones  # noqa: E402
from forensic.explain.engine import StreamClassifier  # noqa: E402
from forensic.model import ForensicModel  # noqa: E402


def _pass_time(model: ForensicModel, stream: str, x: torch.Tensor, *, explicit: bool, backward: bool) -> float:
    classifier = StreamClassifier(model, stream)
    masks = torch.rand(8, *x.shape[-2:], generator=torch.Generator().manual_seed(0)).to(x.dtype)
    original = backbones.attend

    def forced(*args, explicit_=explicit, **kwargs):
        kwargs["explicit"] = explicit_
        return original(*args, **kwargs)

    def run():
        chunk = masks.clone().requires_grad_(backward)
        with torch.set_grad_enabled(backward):
            out = classifier(x * chunk[:, None])[:, 1].float()
            if backward:
                torch.autograd.grad(out.sum(), chunk)

    backbones.attend = forced
    try:
        return median_time(run, repeats=5, warmup=1)
    finally:
        backbones.attend = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    model = ForensicModel(random_config(args.preset), device="meta").to_empty(device="cpu")
    model.init_random_(seed=0)
    model.eval()
    print("| stream | weights | pass (batch 8) | SDPA s | explicit s | explicit speed-up |")
    print("|---|---|---|---|---|---|")
    for dtype in (torch.float32, torch.bfloat16):
        m = model if dtype == torch.float32 else model.cast_copy(dtype)
        for stream in m.stream_names:
            size = m.config.stream(stream).size
            x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1)).to(dtype)
            for backward in (False, True):
                sdpa = _pass_time(m, stream, x, explicit=False, backward=backward)
                explicit = _pass_time(m, stream, x, explicit=True, backward=backward)
                kind = "forward + backward to the masks" if backward else "forward (no grad)"
                dt = str(dtype).replace("torch.", "")
                print(f"| {stream} | {dt} | {kind} | {sdpa:.3f} | {explicit:.3f} | {sdpa / explicit:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
