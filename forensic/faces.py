"""Face detection, fallbacks on degraded images, face selection policy and the face crop.

The Localized Facial stream of the paper sees a square crop around one face. This module finds
faces with facenet-pytorch's MTCNN, retries on enhanced copies when a degraded image defeats the
detector (the idea of the authors' RetinaFace fallback chain), picks one face with the authors'
policy, and describes the crop as a :class:`CropRegion` whose mapping to image coordinates is exact,
so that heatmaps computed on the crop can be pasted back onto the image.

Coordinates: boxes and regions use *edge* coordinates (pixel ``i`` spans ``[i, i + 1)``); the
point mappings of :class:`CropRegion` take and return *pixel-index* coordinates (the centre of
pixel ``i`` is ``i``), the convention of ``cv2.resize`` and ``cv2.warpAffine``.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import cv2
import numpy as np

if TYPE_CHECKING:  # torch is imported lazily: decoding and the degradation lab do not need it
    from facenet_pytorch import MTCNN

logger = logging.getLogger(__name__)

FaceMode = Literal["crop", "small-face", "no-face"]

#: Enhanced copies tried, in this order, when nothing is found on the original image.
RETRY_CHAIN: tuple[str, ...] = ("denoise", "clahe-sharpen", "median", "upscale-2x", "pad")

# How each retry is named in the one-sentence reason shown to users.
_RETRY_WORDS = {
    "denoise": "denoised",
    "clahe-sharpen": "contrast-enhanced and sharpened",
    "median": "median-filtered",
    "upscale-2x": "upscaled",
    "pad": "padded",
}

_INTERPOLATIONS = {
    "area": cv2.INTER_AREA,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "nearest": cv2.INTER_NEAREST,
}

# Seed policy: when the two best scores are closer than this, position decides.
_SCORE_TIE = 0.02


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaceBox:
    """One detected face in image pixel (edge) coordinates, with the detector's confidence."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0)

    def contains(self, x: float, y: float) -> bool:
        """Whether the point (x, y) lies inside the box (edges included, as in the seed)."""
        return self.x0 <= x <= self.x1 and self.y0 <= y <= self.y1

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class CropRegion:
    """The image rectangle that is resampled to the face stream's square input.

    It may extend beyond the image; pixels there are zero (as in the authors' crop). Regions made
    by :func:`square_region` lie on the integer pixel grid, so :meth:`extract` reproduces the
    authors' pad + slice + ``cv2.resize`` exactly.
    """

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

    @property
    def is_integer(self) -> bool:
        """True when all four edges lie on the pixel grid."""
        return all(float(v).is_integer() for v in (self.x0, self.y0, self.x1, self.y1))

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

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
        image = _as_rgb(image)
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


# --------------------------------------------------------------------------------------------
# Selection policy
# --------------------------------------------------------------------------------------------


def _select(
    faces: Sequence[FaceBox], image_size: tuple[int, int]
) -> tuple[FaceBox | None, str]:
    """The policy of :func:`select_face`, also returning which rule decided (for the UI)."""
    if not faces:
        return None, "none"
    ranked = sorted(faces, key=lambda f: -f.score)  # stable: ties keep detection order
    if len(ranked) == 1 or ranked[0].score - ranked[1].score >= _SCORE_TIE:
        return ranked[0], "score"
    w, h = image_size
    cx, cy = w / 2.0, h / 2.0
    # As in the seed, once the top two tie, every detection competes on position.
    containing = [f for f in ranked if f.contains(cx, cy)]
    if containing:
        return max(containing, key=lambda f: f.area), "centre"
    return (
        min(ranked, key=lambda f: (f.center[0] - cx) ** 2 + (f.center[1] - cy) ** 2),
        "nearest",
    )


def select_face(faces: Sequence[FaceBox], image_size: tuple[int, int]) -> FaceBox | None:
    """Pick the face the face stream should see (the authors' policy).

    The most confident face wins, unless the top two scores are within 0.02: then the largest box
    containing the image centre wins, or, if none contains it, the face nearest the centre.

    Args:
        faces: detections in image coordinates.
        image_size: ``(w, h)`` of the image.

    Returns:
        The chosen face, or None when ``faces`` is empty.
    """
    return _select(faces, image_size)[0]


# --------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaceResult:
    """What the face stage decided for one image."""

    mode: FaceMode
    box: FaceBox | None
    region: CropRegion
    faces: tuple[FaceBox, ...]
    found_by: str | None
    reason: str
    image_size: tuple[int, int]

    @property
    def face_fraction(self) -> float | None:
        """Area of the chosen box over the image area (None without a face)."""
        w, h = self.image_size
        if self.box is None or w * h == 0:
            return None
        return self.box.area / float(w * h)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (plain floats, lists and strings)."""
        return {
            "mode": self.mode,
            "box": None if self.box is None else self.box.to_dict(),
            "region": self.region.to_dict(),
            "faces": [f.to_dict() for f in self.faces],
            "found_by": self.found_by,
            "reason": self.reason,
            "image_size": [int(self.image_size[0]), int(self.image_size[1])],
            "face_fraction": self.face_fraction,
        }


# --------------------------------------------------------------------------------------------
# Enhanced copies for the retry chain
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Attempt:
    """An image MTCNN runs on, and how its coordinates relate to the original's:
    ``attempt = original * scale + offset`` (per axis, edge coordinates)."""

    name: str
    image: np.ndarray
    scale_x: float
    scale_y: float
    offset_x: float = 0.0
    offset_y: float = 0.0


def _unsharp(image: np.ndarray, *, sigma: float, amount: float) -> np.ndarray:
    blurred = cv2.GaussianBlur(image, (0, 0), sigma)
    return cv2.addWeighted(image, 1.0 + amount, blurred, -amount, 0)


def _clahe(image: np.ndarray, *, clip: float) -> np.ndarray:
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    lab[..., 0] = cv2.createCLAHE(clipLimit=clip, tileGridSize=(8, 8)).apply(
        np.ascontiguousarray(lab[..., 0])
    )
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def _enhance_denoise(image: np.ndarray) -> tuple[np.ndarray, float, float]:
    # The seed's strength (h = 15); OpenCV's colour variant expects BGR.
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    out = cv2.fastNlMeansDenoisingColored(bgr, None, 15, 15, 7, 21)
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB), 1.0, 0.0


def _enhance_clahe_sharpen(image: np.ndarray) -> tuple[np.ndarray, float, float]:
    return _unsharp(_clahe(image, clip=3.0), sigma=2.0, amount=1.0), 1.0, 0.0


def _enhance_median(image: np.ndarray) -> tuple[np.ndarray, float, float]:
    return cv2.medianBlur(image, 5), 1.0, 0.0


def _enhance_upscale(image: np.ndarray) -> tuple[np.ndarray, float, float]:
    # Gamma chosen so the mean brightness moves to mid-grey: dark images get brighter, washed-out
    # ones darker (the seed used a fixed gamma); bounded so it never goes wild.
    mean = float(np.clip(image.mean() / 255.0, 0.02, 0.98))
    gamma = float(np.clip(math.log(0.5) / math.log(mean), 0.4, 2.5))
    lut = np.clip(((np.arange(256) / 255.0) ** gamma) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    h, w = image.shape[:2]
    up = cv2.resize(cv2.LUT(image, lut), (2 * w, 2 * h), interpolation=cv2.INTER_CUBIC)
    return _unsharp(up, sigma=3.0, amount=1.0), 2.0, 0.0


def _enhance_pad(image: np.ndarray) -> tuple[np.ndarray, float, float]:
    # Mid-grey context lets the detector place a box on a face cut by the image edge.
    pad = max(1, int(round(0.25 * max(image.shape[:2]))))
    out = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(128, 128, 128))
    return out, 1.0, float(pad)


_ENHANCERS: dict[str, Callable[[np.ndarray], tuple[np.ndarray, float, float]]] = {
    "denoise": _enhance_denoise,
    "clahe-sharpen": _enhance_clahe_sharpen,
    "median": _enhance_median,
    "upscale-2x": _enhance_upscale,
    "pad": _enhance_pad,
}


# --------------------------------------------------------------------------------------------
# Detector
# --------------------------------------------------------------------------------------------


class FaceDetector:
    """MTCNN face detection with a retry chain, the authors' selection policy and crop.

    The MTCNN model is created on first use and reused; creating it is lock-protected so threads
    of a web app can share one detector.

    Args:
        device: torch device for MTCNN ("cpu", "cuda", ...).
        min_score: detections below this probability are ignored (the seed used 0.9).
        small_face_fraction: a chosen face whose box covers less than this fraction of the image
            makes the face stream see the whole image (1/9 in the seed).
        crop_scale: side of the square crop relative to the larger box side (1.3 in the seed).
        min_face_size: MTCNN's smallest face, in pixels of the image it runs on.
        retries: retry on enhanced copies when nothing is found on the original.
        max_side: MTCNN runs on a copy whose longer side is at most this (speed); boxes are
            scaled back to the original.
    """

    def __init__(
        self,
        *,
        device: str = "cpu",
        min_score: float = 0.9,
        small_face_fraction: float = 1.0 / 9.0,
        crop_scale: float = 1.3,
        min_face_size: int = 20,
        retries: bool = True,
        max_side: int = 1024,
    ) -> None:
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {min_score}")
        if not 0.0 <= small_face_fraction <= 1.0:
            raise ValueError(f"small_face_fraction must be in [0, 1], got {small_face_fraction}")
        if crop_scale <= 0:
            raise ValueError(f"crop_scale must be positive, got {crop_scale}")
        if min_face_size < 12:
            raise ValueError(
                f"min_face_size must be >= 12 (MTCNN's smallest window), got {min_face_size}"
            )
        if max_side < 64:
            raise ValueError(f"max_side must be >= 64, got {max_side}")
        self.device = device
        self.min_score = float(min_score)
        self.small_face_fraction = float(small_face_fraction)
        self.crop_scale = float(crop_scale)
        self.min_face_size = int(min_face_size)
        self.retries = bool(retries)
        self.max_side = int(max_side)
        self._mtcnn: MTCNN | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"FaceDetector(device={self.device!r}, min_score={self.min_score}, "
            f"small_face_fraction={self.small_face_fraction:.4g}, crop_scale={self.crop_scale}, "
            f"min_face_size={self.min_face_size}, retries={self.retries}, max_side={self.max_side})"
        )

    @property
    def mtcnn(self) -> MTCNN:
        """The MTCNN model, created once on first use."""
        if self._mtcnn is None:
            with self._lock:
                if self._mtcnn is None:
                    try:
                        from facenet_pytorch import MTCNN
                    except ImportError as exc:  # pragma: no cover - depends on the install
                        raise ImportError(
                            "Face detection needs facenet-pytorch: pip install facenet-pytorch"
                        ) from exc
                    logger.debug("Creating MTCNN on %s", self.device)
                    self._mtcnn = MTCNN(
                        keep_all=True,
                        device=self.device,
                        min_face_size=self.min_face_size,
                        select_largest=False,
                    )
        return self._mtcnn

    # -- detection ---------------------------------------------------------------------------

    def detect(self, image: np.ndarray) -> tuple[FaceBox, ...]:
        """All faces above ``min_score``, in original image coordinates, best score first.

        When nothing is found and ``retries`` is on, enhanced copies are tried in the order of
        :data:`RETRY_CHAIN` until one yields a face.
        """
        return self._detect(_as_rgb(image))[0]

    def detect_enhanced(self, image: np.ndarray, *, enhancement: str) -> tuple[FaceBox, ...]:
        """Run the detector on one enhanced copy only (``"original"`` or a :data:`RETRY_CHAIN`
        name), with boxes mapped back to ``image``'s coordinates. Useful for diagnosis."""
        if enhancement != "original" and enhancement not in _ENHANCERS:
            valid = ", ".join(("original",) + RETRY_CHAIN)
            raise ValueError(f"Unknown enhancement {enhancement!r}; valid: {valid}")
        rgb = _as_rgb(image)
        if self._too_small(rgb):
            return ()
        working = self._working_attempt(rgb)
        attempt = working if enhancement == "original" else _enhanced(working, enhancement)
        return self._run(attempt, rgb.shape[1], rgb.shape[0])

    def _detect(self, image: np.ndarray) -> tuple[tuple[FaceBox, ...], str | None]:
        h, w = image.shape[:2]
        if self._too_small(image):
            return (), None
        working = self._working_attempt(image)
        faces = self._run(working, w, h)
        if faces or not self.retries:
            return faces, ("original" if faces else None)
        for name in RETRY_CHAIN:
            faces = self._run(_enhanced(working, name), w, h)
            if faces:
                logger.info("No face on the original; found %d on the %s copy", len(faces), name)
                return faces, name
        return (), None

    def _too_small(self, image: np.ndarray) -> bool:
        # The largest enhanced copy is 2x: below that, no attempt can reach MTCNN's minimum.
        return 2 * min(image.shape[:2]) < self.min_face_size

    def _working_attempt(self, image: np.ndarray) -> _Attempt:
        """The original, downscaled so its longer side is at most ``max_side``."""
        h, w = image.shape[:2]
        longest = max(h, w)
        if longest <= self.max_side:
            return _Attempt("original", image, 1.0, 1.0)
        s = self.max_side / longest
        nw, nh = max(1, round(w * s)), max(1, round(h * s))
        small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        return _Attempt("original", small, nw / w, nh / h)

    def _run(self, attempt: _Attempt, width: int, height: int) -> tuple[FaceBox, ...]:
        """MTCNN on one attempt; boxes mapped to the original ``width`` x ``height`` image."""
        img = attempt.image
        # MTCNN's image pyramid is empty (and it raises) when the image is smaller than its
        # smallest face; such an image has no detectable face.
        if min(img.shape[:2]) < self.min_face_size:
            return ()
        boxes, probs = self.mtcnn.detect(np.ascontiguousarray(img))
        if boxes is None:
            return ()
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        probs = np.asarray(probs, dtype=np.float64).reshape(-1)
        faces = []
        for (bx0, by0, bx1, by1), p in zip(boxes, probs):
            if not np.isfinite(p) or p < self.min_score:
                continue
            face = FaceBox(
                x0=(bx0 - attempt.offset_x) / attempt.scale_x,
                y0=(by0 - attempt.offset_y) / attempt.scale_y,
                x1=(bx1 - attempt.offset_x) / attempt.scale_x,
                y1=(by1 - attempt.offset_y) / attempt.scale_y,
                score=float(p),
            )
            cx, cy = face.center
            # A box centred in the padding (or off a retry's edge) is not a face of this image.
            if 0.0 <= cx <= width and 0.0 <= cy <= height:
                faces.append(face)
        return tuple(sorted(faces, key=lambda f: -f.score))

    # -- policy --------------------------------------------------------------------------------

    def analyze(self, image: np.ndarray) -> FaceResult:
        """Detect, select one face and decide what the face stream sees.

        Returns:
            A :class:`FaceResult`: ``crop`` with the 1.3x square region, or ``small-face`` /
            ``no-face`` with the whole image as region, and a one-sentence reason.
        """
        rgb = _as_rgb(image)
        h, w = rgb.shape[:2]
        whole = CropRegion(0.0, 0.0, float(w), float(h))
        faces, found_by = self._detect(rgb)
        chosen, rule = _select(faces, (w, h))
        if chosen is None:
            tried = ""
            if self._too_small(rgb):
                tried = f" (the {w}x{h} image is too small for the detector)"
            elif self.retries:
                words = _join_words([_RETRY_WORDS[n] for n in RETRY_CHAIN])
                tried = f" (also tried {words} copies)"
            return FaceResult(
                mode="no-face",
                box=None,
                region=whole,
                faces=(),
                found_by=None,
                reason=f"No face found{tried}: no face crop, so the face stream falls back to the whole image, as in the paper.",
                image_size=(w, h),
            )
        fraction = chosen.area / float(w * h)
        notes = _notes(faces, rule, found_by)
        if fraction < self.small_face_fraction:
            return FaceResult(
                mode="small-face",
                box=chosen,
                region=whole,
                faces=faces,
                found_by=found_by,
                reason=(
                    f"Face covers {_percent(fraction)} of the image "
                    f"(< {_fraction_text(self.small_face_fraction)})"
                    f"{notes}: too small for a face crop, so the face stream falls back to the whole image, as in the paper."
                ),
                image_size=(w, h),
            )
        return FaceResult(
            mode="crop",
            box=chosen,
            region=square_region(chosen, scale=self.crop_scale, image_size=(w, h)),
            faces=faces,
            found_by=found_by,
            reason=(
                f"Face found (score {chosen.score:.2f}, covers {_percent(fraction)} of the image)"
                f"{notes}: the face stream sees a {self.crop_scale:g}x square crop around it."
            ),
            image_size=(w, h),
        )


def _enhanced(working: _Attempt, name: str) -> _Attempt:
    image, k, offset = _ENHANCERS[name](working.image)
    return _Attempt(
        name,
        image,
        scale_x=working.scale_x * k,
        scale_y=working.scale_y * k,
        offset_x=offset,
        offset_y=offset,
    )


def _notes(faces: tuple[FaceBox, ...], rule: str, found_by: str | None) -> str:
    parts = []
    if found_by not in (None, "original"):
        parts.append(f"found on the {_RETRY_WORDS[found_by]} copy")
    if len(faces) > 1:
        why = {
            "score": "the most confident",
            "centre": "the largest box at the image centre",
            "nearest": "the one nearest the centre",
        }[rule]
        parts.append(f"{len(faces)} faces, using {why}")
    return "".join(f"; {p}" for p in parts)


def _percent(fraction: float) -> str:
    pct = 100.0 * fraction
    return f"{pct:.0f}%" if pct >= 1.0 else f"{pct:.1f}%"


def _fraction_text(fraction: float) -> str:
    if fraction > 0 and abs(1.0 / fraction - round(1.0 / fraction)) < 1e-9:
        return f"1/{round(1.0 / fraction)}"
    return _percent(fraction)


def _join_words(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _interpolation_flag(name: str) -> int:
    try:
        return _INTERPOLATIONS[name]
    except KeyError:
        raise ValueError(
            f"Unknown interpolation {name!r}; valid: {', '.join(_INTERPOLATIONS)}"
        ) from None


def _as_rgb(image: np.ndarray) -> np.ndarray:
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


_default_detector: FaceDetector | None = None
_default_lock = threading.Lock()


def get_default_detector() -> FaceDetector:
    """The process-wide shared :class:`FaceDetector` (created once), so MTCNN loads once."""
    global _default_detector
    if _default_detector is None:
        with _default_lock:
            if _default_detector is None:
                _default_detector = FaceDetector()
    return _default_detector
