"""The whole predict path against the streams alone, stage by stage, on a folder of mixed real photos.

    python bench/pipeline.py                                  # tiny-random and small, CPU, float32
    python bench/pipeline.py --preset small --dtype bfloat16
    python bench/pipeline.py --preset paper --device cuda --dtype bfloat16 --batch 32   # on a GPU

The folder is made from the shipped examples and scikit-image's photos with crops, flips and
resizes: every size from 256 to 2048 px has as many images with a face as without one, so the
cost of a faceless image can be compared with that of an image with a face. Reports:

- per-stage seconds per image (decode, faces, prepare, streams at the batch size, assemble),
  run one stage at a time;
- the full path (``Detector.analyze_many`` over the file paths, stages overlapped) in images/s,
  and its share of the streams-only throughput at the same batch size;
- the faceless / face cost ratio (full path, each half of the folder on its own);
- ``python -m forensic predict`` on the folder, end to end (process start and model build
  included), for reference.

Random weights time exactly like trained ones.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parent.parent

SIZES = (256, 384, 512, 768, 1024, 1536, 2048)


def make_mixed_folder(folder: Path) -> dict[str, list[Path]]:
    """Writes the mixed photos to ``folder``; returns the paths with and without a face."""
    import cv2
    import numpy as np
    from skimage import data

    from forensic.images import load_image

    astronaut = load_image(ROOT / "examples" / "astronaut.jpg")
    face_sources = [
        np.ascontiguousarray(astronaut[0:256, 96:352]),  # the face fills the frame (a crop)
        np.ascontiguousarray(astronaut[0:320, 64:384, :][:, ::-1]),  # flipped, a little wider
    ]
    faceless_sources = [
        load_image(ROOT / "examples" / "coffee.jpg"),
        np.ascontiguousarray(data.rocket()[:, ::-1]),
        np.ascontiguousarray(data.chelsea()),
    ]
    out: dict[str, list[Path]] = {"face": [], "faceless": []}
    folder.mkdir(parents=True, exist_ok=True)
    for k, size in enumerate(SIZES):
        faceless = [faceless_sources[k % 3], faceless_sources[(k + 1) % 3]]
        for kind, sources in (("face", face_sources), ("faceless", faceless)):
            for j, src in enumerate(sources):
                h, w = src.shape[:2]
                side = min(h, w)  # a centred square, resized: every photo is size x size
                square = src[(h - side) // 2 : (h - side) // 2 + side, (w - side) // 2 : (w - side) // 2 + side]
                flag = cv2.INTER_AREA if size < side else cv2.INTER_CUBIC
                image = cv2.resize(square, (size, size), interpolation=flag)
                path = folder / f"{kind}_{size}_{j}.png"
                cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
                out[kind].append(path)
    return out


def run(
    preset: str, *, device: str, dtype: str, batch: int, folder: Path, paths: dict[str, list[Path]], compile: bool = False
) -> dict:
    import numpy as np
    import torch

    from _common import random_config
    from forensic import pipeline
    from forensic.model import ForensicModel
    from forensic.pipeline import Detector

    model = ForensicModel(random_config(preset), device="meta").to_empty(device=device)
    model.init_random_(seed=0)
    model = model.to(getattr(torch, dtype)).eval()
    detector = Detector(model, weights="random", compile=compile)
    files = paths["face"] + paths["faceless"]
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    # warm-up: MTCNN, kernels, allocator
    for _ in detector.analyze_many(files[:batch], batch_size=batch):
        pass
    row: dict = {"preset": f"{preset} ({dtype}, {device}{', compiled' if detector._forward.compiled else ''})", "images": len(files), "batch": batch}

    # --- one image, start to verdict (no explanation): what the app's user waits for
    one = pipeline.load(paths["face"][4]).image  # 512 px, a face crop
    for _ in range(3):
        detector.analyze(one)
    sync()
    times = []
    for _ in range(10):
        t = time.perf_counter()
        detector.analyze(one)
        sync()
        times.append(time.perf_counter() - t)
    row["one_image_verdict_s"] = float(np.median(times))

    # --- one stage at a time
    t = time.perf_counter()
    loaded = [pipeline.load(p) for p in files]
    row["decode_s"] = (time.perf_counter() - t) / len(files)
    t = time.perf_counter()
    faces = [detector.face_detector.analyze(x.image) for x in loaded]
    row["faces_s"] = (time.perf_counter() - t) / len(files)
    t = time.perf_counter()
    faces_batched = detector.face_detector.analyze_batch([x.image for x in loaded])
    row["faces_batched_s"] = (time.perf_counter() - t) / len(files)
    assert [f.mode for f in faces] == [f.mode for f in faces_batched]
    t = time.perf_counter()
    prepared = [pipeline.prepare(x, f, detector.config) for x, f in zip(loaded, faces)]
    row["prepare_s"] = (time.perf_counter() - t) / len(files)
    inputs = [p.inputs for p in prepared] * max(1, 64 // len(prepared))
    chunks = [inputs[i : i + batch] for i in range(0, len(inputs) - batch + 1, batch)]
    sync()
    t = time.perf_counter()
    host = []
    for chunk in chunks:
        host.extend(pipeline.forward(detector.model, chunk).host())
    sync()
    streams_s = (time.perf_counter() - t) / (len(chunks) * batch)
    row["streams_s"] = streams_s
    row["streams_img_per_s"] = 1.0 / streams_s
    t = time.perf_counter()
    for p, h in zip(prepared, host):
        pipeline.assemble(p, h, config=detector.config, weights=None, device=device)
    row["assemble_s"] = (time.perf_counter() - t) / len(prepared)
    row["face_modes"] = {m: sum(f.mode == m for f in faces) for m in ("crop", "small-face", "no-face")}

    # --- the full path, stages overlapped
    def full(sources: list[Path]) -> float:
        sync()
        start = time.perf_counter()
        for _, result in detector.analyze_many(sources, batch_size=batch):
            assert not isinstance(result, Exception), result
        sync()
        return (time.perf_counter() - start) / len(sources)

    per_image = full(files)
    row["full_img_per_s"] = 1.0 / per_image
    row["full_share_of_streams"] = streams_s / per_image
    row["face_s_per_image"] = full(paths["face"])
    row["faceless_s_per_image"] = full(paths["faceless"])
    row["faceless_over_face"] = row["faceless_s_per_image"] / row["face_s_per_image"]
    return row


def cli_predict(preset: str, folder: Path, *, device: str, dtype: str) -> float:
    """Seconds for ``python -m forensic predict`` over the folder, process start included."""
    env = dict(os.environ, FORENSIC_DEVICE=device, FORENSIC_DTYPE=dtype)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "forensic", "predict", str(folder), "--preset", preset, "--format", "json",
             "--out", str(Path(tmp) / "out.jsonl")],
            check=True, env=env, capture_output=True, cwd=ROOT,
        )
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", action="append", help="preset(s) (default: tiny-random, small)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--cli", action="store_true", help="also time `python -m forensic predict` (tiny-random only)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the streams (CUDA only)")
    args = parser.parse_args()
    from _common import machine, metric_table

    print(f"machine: {machine()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "mixed"
        paths = make_mixed_folder(folder)
        for preset in args.preset or ["tiny-random", "small"]:
            row = run(preset, device=args.device, dtype=args.dtype, batch=args.batch, folder=folder, paths=paths, compile=args.compile)
            if args.cli and preset == "tiny-random":
                row["cli_predict_s"] = cli_predict(preset, folder, device=args.device, dtype=args.dtype)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    keys = ["images", "batch", "face_modes", "one_image_verdict_s", "decode_s", "faces_s", "faces_batched_s", "prepare_s", "streams_s", "assemble_s",
            "streams_img_per_s", "full_img_per_s", "full_share_of_streams", "face_s_per_image", "faceless_s_per_image",
            "faceless_over_face", "cli_predict_s"]
    print(metric_table(rows, keys))


if __name__ == "__main__":
    main()
