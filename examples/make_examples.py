"""Regenerate the app's example images (deterministic: same files on every run).

    python examples/make_examples.py [--out examples]

Sources are scikit-image's bundled sample photos (see ``examples/README.md`` for their licences):

* ``astronaut.jpg``: the full 512x512 NASA portrait. The face covers ~4% of it, below the paper's
  1/9 threshold, so the face stream falls back to the whole image (the app shows this).
* ``astronaut_face.png``: a 256x256 face-centred crop at native resolution, like the paper's
  training images (DeepfakeBench-style crops), so all three streams see the face.
* ``astronaut_face_selfblend.png`` and ``astronaut_selfblend.jpg``: GENERATED pseudo-fakes of the two
  above, made with :func:`forensic.pseudofake.self_blend` over the MTCNN face box.
* ``coffee.jpg``: a real photo with no face.
* ``thumbs/*.jpg``: 160 px thumbnails of the above for the app's example gallery
  (``--thumbs-only`` remakes just these from the files present).

The full-size photos are stored as JPEG quality 95 (4:4:4) to stay under 200 KB; a lossless PNG of
a 512x512 photo is ~420 KB. Real and generated full-size images go through the same encoder, so
the pair differs only by the blend. The 256x256 crops are lossless PNGs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

CROP = 256
SEED = 2026  # fixes the self-blend's jitter and mask
THUMB = 160  # longest side of a gallery thumbnail, px
EXAMPLE_FILES = ("astronaut_face.png", "astronaut_face_selfblend.png", "astronaut.jpg", "astronaut_selfblend.jpg", "coffee.jpg")


def _save(image: np.ndarray, path: Path) -> None:
    pil = Image.fromarray(image)
    if path.suffix == ".jpg":
        pil.save(path, "JPEG", quality=95, subsampling=0, optimize=True)
    else:
        pil.save(path, "PNG", optimize=True)
    print(f"{path}  {image.shape[1]}x{image.shape[0]}  {path.stat().st_size / 1024:.0f} KB")


def _face_crop(image: np.ndarray, box: tuple[float, float, float, float], size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """A ``size`` square of native pixels centred on the box, shifted to stay inside the image."""
    h, w = image.shape[:2]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x0 = int(np.clip(round(cx - size / 2), 0, w - size))
    y0 = int(np.clip(round(cy - size / 2), 0, h - size))
    return np.ascontiguousarray(image[y0 : y0 + size, x0 : x0 + size]), (x0, y0)


def make_thumbnails(folder: Path) -> None:
    """``thumbs/<stem>.jpg``: each example scaled to :data:`THUMB` px on its longest side (JPEG quality 85)."""
    (folder / "thumbs").mkdir(exist_ok=True)
    for name in EXAMPLE_FILES:
        if not (folder / name).exists():
            continue
        with Image.open(folder / name) as im:
            thumb = im.convert("RGB")
        thumb.thumbnail((THUMB, THUMB), Image.Resampling.LANCZOS)
        path = folder / "thumbs" / (Path(name).stem + ".jpg")
        thumb.save(path, "JPEG", quality=85, optimize=True)
        print(f"{path}  {thumb.width}x{thumb.height}  {path.stat().st_size / 1024:.0f} KB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--thumbs-only", action="store_true", help="only remake thumbs/ from the example files present")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.thumbs_only:
        make_thumbnails(out)
        return 0

    from skimage import data

    from forensic.faces import get_default_detector
    from forensic.pseudofake import self_blend

    astronaut = np.ascontiguousarray(data.astronaut())
    face = get_default_detector().analyze(astronaut).box
    if face is None:
        raise SystemExit("MTCNN found no face in the astronaut photo; cannot make the examples")
    box = (face.x0, face.y0, face.x1, face.y1)
    crop, (ox, oy) = _face_crop(astronaut, box, CROP)
    crop_box = (box[0] - ox, box[1] - oy, box[2] - ox, box[3] - oy)

    _save(astronaut, out / "astronaut.jpg")
    _save(crop, out / "astronaut_face.png")
    _save(self_blend(crop, rng=np.random.default_rng(SEED), face_box=crop_box).image, out / "astronaut_face_selfblend.png")
    _save(self_blend(astronaut, rng=np.random.default_rng(SEED), face_box=box).image, out / "astronaut_selfblend.jpg")
    _save(np.ascontiguousarray(data.coffee()), out / "coffee.jpg")
    make_thumbnails(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
