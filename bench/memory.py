"""Peak memory of a preset's architecture with all three streams built (random weights).

The base backbones are held once however many streams use them, so ``paper`` should need about
one DINOv2-giant plus one CLIP ViT-L (~5.8 GB in float32), not three giants (~15 GB).

    python bench/memory.py [--preset paper] [--dtype float32|bfloat16]

Each preset is measured in a fresh process (peak RSS never goes down within one).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def measure(preset: str, dtype_name: str) -> None:
    import torch

    from _common import machine, peak_rss_gb, random_config
    from forensic.model import ForensicModel

    dtype = getattr(torch, dtype_name)
    base_rss = peak_rss_gb()
    cfg = random_config(preset)
    start = time.perf_counter()
    model = ForensicModel(cfg, device="meta")
    model = model.to_empty(device="cpu").to(dtype)
    with torch.no_grad():  # touch every page so it counts as resident (values do not matter here)
        for p in model.parameters():
            p.normal_(0, 0.02)
    build = time.perf_counter() - start
    params = {
        "dinov2 base": sum(p.numel() for p in model.dinov2.parameters()),
        "clip base": sum(p.numel() for p in model.clip.parameters()) if model.clip is not None else 0,
        "adapters (3 streams)": sum(p.numel() for p in model.adapters.parameters()),
        "heads": sum(p.numel() for p in model.heads.parameters()),
    }
    with torch.inference_mode():
        x252 = torch.randn(1, 3, 252, 252, dtype=dtype)
        x224 = torch.randn(1, 3, 224, 224, dtype=dtype)
        model.forward_streams({"texture": x252, "face": x252, "fusion": x224})
    bytes_per = torch.finfo(dtype).bits // 8
    one_giant_plus_clip = (params["dinov2 base"] + params["clip base"]) * bytes_per / 1024**3
    three_copies = (3 * params["dinov2 base"] + params["clip base"]) * bytes_per / 1024**3
    print(f"machine: {machine()}")
    print(f"preset {preset} ({dtype_name}), all three streams built and run once:")
    for name, n in params.items():
        print(f"  {name:22s} {n / 1e6:9.1f} M params  {n * bytes_per / 1024**3:6.2f} GB")
    print(f"  peak RSS               {peak_rss_gb():6.2f} GB (interpreter + torch before building: {base_rss:.2f} GB)")
    print(f"  one base + CLIP        {one_giant_plus_clip:6.2f} GB of weights; three separate bases would be {three_copies:.2f} GB")
    print(f"  build time             {build:6.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", action="append", help="preset(s) to measure (default: tiny-random, small, paper)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    presets = args.preset or ["tiny-random", "small", "paper"]
    if args.inner:
        measure(presets[0], args.dtype)
        return
    for preset in presets:
        subprocess.run([sys.executable, __file__, "--inner", "--preset", preset, "--dtype", args.dtype], check=True)


if __name__ == "__main__":
    main()
