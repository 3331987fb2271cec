"""Make the app's example clip from the shipped photos (deterministic: same bytes on every run).

    python examples/make_example_clip.py [--out examples]

``astronaut_blend_clip.mp4`` (256x256, 10 fps, 8 s, H.264 CRF 23 through libx264, one thread, no
audio): the face crop ``astronaut_face.png`` (real) for 0-3 s, its self-blended pseudo-fake
``astronaut_face_selfblend.png`` (GENERATED, see README.md) for 3-5 s, the real crop again for
5-8 s. A slow sway of a few pixels (the same on both images) makes it a clip rather than a still;
sampled at 1 frame/s the frames at 3 s and 4 s show the blended face.
"""

from __future__ import annotations

import argparse
import fractions
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
NAME = "astronaut_blend_clip.mp4"
SIZE, FPS, SECONDS = 256, 10, 8
FAKE_FROM_S, FAKE_TO_S = 3.0, 5.0
SWAY_PX = 6


def frames(folder: Path) -> list[np.ndarray]:
    """The clip's RGB frames: the real crop, the blended one in the middle segment, a slow sway over both."""
    real = np.asarray(Image.open(folder / "astronaut_face.png").convert("RGB"))
    fake = np.asarray(Image.open(folder / "astronaut_face_selfblend.png").convert("RGB"))
    pad = SWAY_PX
    out = []
    for i in range(SECONDS * FPS):
        t = i / FPS
        source = fake if FAKE_FROM_S <= t < FAKE_TO_S else real
        padded = np.pad(source, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
        dx = int(round(pad + pad * np.sin(2 * np.pi * t / SECONDS)))
        dy = int(round(pad + pad * 0.5 * np.sin(4 * np.pi * t / SECONDS)))
        out.append(np.ascontiguousarray(padded[dy : dy + SIZE, dx : dx + SIZE]))
    return out


def write(path: Path, images: list[np.ndarray]) -> Path:
    import av

    with av.open(str(path), "w", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("libx264", rate=fractions.Fraction(FPS))
        stream.width, stream.height, stream.pix_fmt = SIZE, SIZE, "yuv420p"
        stream.options = {"crf": "23", "threads": "1"}
        for i, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=HERE)
    args = p.parse_args()
    path = write(args.out / NAME, frames(HERE))
    print(f"{path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
