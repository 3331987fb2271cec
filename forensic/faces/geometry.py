"""Face geometry: detected boxes, crop regions and the exact mapping between a crop and its image.

Coordinates: boxes and regions use *edge* coordinates (pixel ``i`` spans ``[i, i + 1)``); the
point mappings of :class:`CropRegion` take and return *pixel-index* coordinates (the centre of
pixel ``i`` is ``i``), the convention of ``cv2.resize`` and ``cv2.warpAffine``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

__all__ = ["FaceBox", "CropRegion", "square_region", "as_rgb"]

_INTERPOLATIONS = {
    "area": cv2.INTER_AREA,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "nearest": cv2.INTER_NEAREST,
}



@dataclass(frozen=True)
class _Rect:
    """An axis-aligned rectangle in edge coordinates."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class FaceBox(_Rect):
    """One detected face in image pixel (edge) coordinates, with the detector's confidence."""

    score: float

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0)

    def contains(self, x: float, y: float) -> bool:
        """Whether the point (x, y) lies inside the box (edges included, as in the seed)."""
        return self.x0 <= x <= self.x1 and self.y0 <= y <= self.y1


@dataclass(frozen=True)
class CropRegion(_Rect):
    """The image rectangle that is resampled to the face stream's square input.

    It may extend beyond the image; pixels there are zero (as in the authors' crop). Regions made
    by :func:`square_region` lie on the integer pixel grid, so :meth:`extract` reproduces the
    authors' pad + slice + ``cv2.resize`` exactly.
    """

    @property
    def is_integer(self) -> bool:
        """True when all four edges lie on the pixel grid."""
        return all(float(v).is_integer() for v in (self.x0, self.y0, self.x1, self.y1))

    def clipped(self, image_size: tuple[int, int]) -> CropRegion:
        """The part of the region inside an image of ``image_size = (w, h)`` (for drawing)."""
        w, h = image_size
        return CropRegion(
            x0=min(max(self.x0, 0.0), w),
            y0=min(max(self.y0, 0.0), h),
            x1=min(max(self.x1, 0.0), w),
            y1=min(max(self.y1, 0.0), h),
        )

    def _scales(self, out_w: float, out_h: float) -> tuple[float, float]:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"CropRegion {self} is empty; it cannot be mapped.")
        return self.width / out_w, self.height / out_h

    def _affine(self, out_w: int, out_h: int) -> np.ndarray:
        """2x3 matrix taking pixel indices of an ``out_w`` x ``out_h`` grid over the region to
        image pixel indices (half-pixel centres, as ``cv2.resize`` does)."""
        sx, sy = self._scales(out_w, out_h)
        return np.array(
            [[sx, 0.0, self.x0 + 0.5 * sx - 0.5], [0.0, sy, self.y0 + 0.5 * sy - 0.5]],
            dtype=np.float64,
        )

    def to_image(self, u: Any, v: Any, size: int) -> tuple[Any, Any]:
        """Map pixel indices (u, v) of a ``size`` x ``size`` crop to image pixel indices.

        Works on scalars and numpy arrays alike.
        """
        sx, sy = self._scales(size, size)
        return self.x0 + (u + 0.5) * sx - 0.5, self.y0 + (v + 0.5) * sy - 0.5

    def from_image(self, x: Any, y: Any, size: int) -> tuple[Any, Any]:
        """Inverse of :meth:`to_image`: image pixel indices to indices of the ``size`` crop."""
        sx, sy = self._scales(size, size)
        return (x + 0.5 - self.x0) / sx - 0.5, (y + 0.5 - self.y0) / sy - 0.5

    def extract(
        self, image: np.ndarray, size: int = 256, interpolation: str = "area"
    ) -> np.ndarray:
        """Resample the region of ``image`` to a ``size`` x ``size`` RGB uint8 crop.

        Args:
            image: HxWx3 uint8 RGB image.
            size: side of the output crop.
            interpolation: ``"area"`` (the authors' choice), ``"linear"``, ``"cubic"`` or
                ``"nearest"``.

        Returns:
            The crop, zero where the region leaves the image.
        """
        flag = _interpolation_flag(interpolation)
        image = as_rgb(image)
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self._scales(size, size)  # rejects empty regions with a clear message
        if self.is_integer:
            canvas = self._slice_padded(image)
            if canvas.shape[:2] == (size, size):
                return canvas
            return cv2.resize(canvas, (size, size), interpolation=flag)
        return self._warp(image, size, flag)

    def _slice_padded(self, image: np.ndarray) -> np.ndarray:
        """The region's pixels, zero outside the image (the seed's copyMakeBorder + slice)."""
        h, w = image.shape[:2]
        x0, y0, x1, y1 = (int(v) for v in (self.x0, self.y0, self.x1, self.y1))
        canvas = np.zeros((y1 - y0, x1 - x0, 3), dtype=np.uint8)
        ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if ix1 > ix0 and iy1 > iy0:
            canvas[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0] = image[iy0:iy1, ix0:ix1]
        return canvas

    def _warp(self, image: np.ndarray, size: int, flag: int) -> np.ndarray:
        """Off-grid regions: an affine warp with the same mapping as :meth:`to_image`."""
        matrix = self._affine(size, size)
        if flag == cv2.INTER_AREA:
            # warpAffine has no area mode; shrink by the integer part of the scale with
            # INTER_AREA first (a true box average) and warp the remainder linearly.
            k = int(min(matrix[0, 0], matrix[1, 1]))
            if k >= 2:
                h, w = image.shape[:2]
                small_size = (max(1, round(w / k)), max(1, round(h / k)))
                small = cv2.resize(image, small_size, interpolation=cv2.INTER_AREA)
                rx, ry = small.shape[1] / w, small.shape[0] / h
                # image index x -> small index (x + 0.5) * rx - 0.5
                matrix = np.array(
                    [
                        [matrix[0, 0] * rx, 0.0, (matrix[0, 2] + 0.5) * rx - 0.5],
                        [0.0, matrix[1, 1] * ry, (matrix[1, 2] + 0.5) * ry - 0.5],
                    ]
                )
                image = small
            flag = cv2.INTER_LINEAR
        return cv2.warpAffine(
            image,
            matrix,
            (size, size),
            flags=flag | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0),
        )

    def paste_map(self, map2d: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
        """Warp a heatmap defined over the region back onto the full image.

        Args:
            map2d: 2-D map covering the region at any resolution (e.g. an 18x18 token grid or a
                256x256 crop-sized map).
            image_shape: ``(h, w)`` (or an image's ``.shape``) of the target image.

        Returns:
            float32 ``(h, w)`` map, bilinearly interpolated inside the region and zero outside.
        """
        arr = np.asarray(map2d, dtype=np.float32)
        if arr.ndim != 2 or arr.size == 0:
            raise ValueError(f"paste_map expects a non-empty 2-D map, got shape {arr.shape}")
        h, w = int(image_shape[0]), int(image_shape[1])
        if h < 1 or w < 1:
            raise ValueError(f"image_shape must be positive, got {tuple(image_shape)}")
        mh, mw = arr.shape
        matrix = self._affine(mw, mh)
        # Replicate the map's border so the region's edge keeps its value; the outside is
        # masked to zero below instead of fading in through the interpolation.
        out = cv2.warpAffine(
            arr,
            matrix,
            (w, h),
            flags=cv2.INTER_LINEAR,  # the matrix maps map -> image; OpenCV inverts it
            borderMode=cv2.BORDER_REPLICATE,
        )
        xs = np.arange(w) + 0.5
        ys = np.arange(h) + 0.5
        rows = (ys >= self.y0) & (ys < self.y1)
        cols = (xs >= self.x0) & (xs < self.x1)
        inside = rows[:, None] & cols[None, :]
        out[~inside] = 0.0
        return out


def square_region(
    box: FaceBox, *, scale: float = 1.3, image_size: tuple[int, int] | None = None
) -> CropRegion:
    """The authors' face crop: a square of side ``scale * max(w, h)`` centred on the box.

    The square is snapped to the pixel grid (side rounded, corner rounded) so the crop is a plain
    pixel slice, as in the seed. It is not clipped: parts outside the image are zero-padded.

    Args:
        box: the chosen face.
        scale: margin factor (1.3 in the paper).
        image_size: optional ``(w, h)``; when given, a box whose centre lies outside the image is
            rejected (it cannot be a face of this image).
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    cx, cy = box.center
    if image_size is not None:
        w, h = image_size
        if not (0 <= cx <= w and 0 <= cy <= h):
            raise ValueError(f"Box centre ({cx:.1f}, {cy:.1f}) lies outside the {w}x{h} image.")
    side = max(1, int(math.floor(scale * max(box.width, box.height) + 0.5)))
    x0 = int(math.floor(cx - side / 2.0 + 0.5))
    y0 = int(math.floor(cy - side / 2.0 + 0.5))
    return CropRegion(x0=float(x0), y0=float(y0), x1=float(x0 + side), y1=float(y0 + side))



def _interpolation_flag(name: str) -> int:
    try:
        return _INTERPOLATIONS[name]
    except KeyError:
        raise ValueError(
            f"Unknown interpolation {name!r}; valid: {', '.join(_INTERPOLATIONS)}"
        ) from None


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Accept HxWx3 uint8 RGB (and, leniently, grayscale or RGBA); return HxWx3 uint8."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"Expected a numpy array (HxWx3 uint8 RGB), got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise TypeError(
            f"Expected a uint8 image, got dtype {image.dtype}; decode files with "
            "forensic.images.load_image or convert with (img * 255).round().astype('uint8')."
        )
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"Expected an HxWx3 RGB image, got shape {image.shape}")
    return np.ascontiguousarray(image)

