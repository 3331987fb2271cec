"""MTCNN face detection: batched across images, on any device, with cheap retries.

The original image (downscaled to at most ``max_side``) is searched for faces of every size. Only
when it yields none do the retries run, on enhanced copies (:mod:`.enhance`); and since a face
smaller than the policy's ``small_face_fraction`` of the image changes nothing the streams see
(the face stream gets the whole image either way), the retries look only for faces large enough
for a crop. That lets them run on a small copy (``retry_side``) with a large minimum face size,
which makes a faceless image cost little more than an image with a face. ``FaceResult.found_by``
says which copy found the face.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch

from .enhance import RETRY_CHAIN, Attempt, enhanced
from .geometry import FaceBox, as_rgb
from .mtcnn import detect_faces
from .policy import FacePolicy, FaceResult, decide

if TYPE_CHECKING:  # facenet-pytorch is imported on first use: decoding and the lab do not need it
    from facenet_pytorch import MTCNN

__all__ = ["FaceDetector", "get_default_detector"]

logger = logging.getLogger(__name__)

# Images per MTCNN call: bounds the memory of its float copies and image pyramid.
_MAX_BATCH = 8
# A retry looks for faces whose box side is at least this share of the smallest side a face
# needing a crop can have (boxes are not square, and MTCNN's box is not the face's exact size).
_RETRY_SLACK = 0.6


class FaceDetector:
    """MTCNN face detection with a retry chain, the authors' selection policy and crop.

    The MTCNN model is created on first use and reused; creating it is lock-protected so threads
    of a web app can share one detector.

    Args:
        device: torch device for MTCNN ("cpu", "cuda", ...): the model's device, so a GPU
            detects faces too.
        min_score: detections below this probability are ignored (the seed used 0.9).
        small_face_fraction: a chosen face whose box covers less than this fraction of the image
            makes the face stream see the whole image (1/9 in the seed).
        crop_scale: side of the square crop relative to the larger box side (1.3 in the seed).
        min_face_size: MTCNN's smallest face, in pixels of the image it runs on.
        retries: retry on enhanced copies when nothing is found on the original.
        max_side: MTCNN runs on a copy whose longer side is at most this (speed); boxes are
            scaled back to the original.
        retry_side: the retries run on a copy of about ``retry_side`` x ``retry_side`` pixels
            (same aspect), looking only for faces large enough for a crop.
    """

    def __init__(
        self,
        *,
        device: str | torch.device = "cpu",
        min_score: float = 0.9,
        small_face_fraction: float = 1.0 / 9.0,
        crop_scale: float = 1.3,
        min_face_size: int = 20,
        retries: bool = True,
        max_side: int = 1024,
        retry_side: int = 160,
    ) -> None:
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {min_score}")
        if min_face_size < 12:
            raise ValueError(f"min_face_size must be >= 12 (MTCNN's smallest window), got {min_face_size}")
        if max_side < 64:
            raise ValueError(f"max_side must be >= 64, got {max_side}")
        if retry_side < 64:
            raise ValueError(f"retry_side must be >= 64, got {retry_side}")
        self.policy = FacePolicy(small_face_fraction=float(small_face_fraction), crop_scale=float(crop_scale))
        self.device = str(device)
        self.min_score = float(min_score)
        self.min_face_size = int(min_face_size)
        self.retries = bool(retries)
        self.max_side = int(max_side)
        self.retry_side = int(retry_side)
        self._mtcnn: MTCNN | None = None
        self._lock = threading.Lock()

    @property
    def small_face_fraction(self) -> float:
        return self.policy.small_face_fraction

    @property
    def crop_scale(self) -> float:
        return self.policy.crop_scale

    def __repr__(self) -> str:
        return (
            f"FaceDetector(device={self.device!r}, min_score={self.min_score}, "
            f"small_face_fraction={self.small_face_fraction:.4g}, crop_scale={self.crop_scale}, "
            f"min_face_size={self.min_face_size}, retries={self.retries}, max_side={self.max_side}, "
            f"retry_side={self.retry_side})"
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
                        raise ImportError("Face detection needs facenet-pytorch: pip install --no-deps facenet-pytorch==2.6.0") from exc
                    logger.debug("Creating MTCNN on %s", self.device)
                    self._mtcnn = MTCNN(keep_all=True, device=self.device, min_face_size=self.min_face_size, select_largest=False)
        return self._mtcnn

    # -- public ----------------------------------------------------------------------------------

    def analyze(self, image: np.ndarray) -> FaceResult:
        """Detect, select one face and decide what the face stream sees.

        Returns:
            A :class:`FaceResult`: ``crop`` with the 1.3x square region, or ``small-face`` /
            ``no-face`` with the whole image as region, and a one-sentence reason.
        """
        return self.analyze_batch([image])[0]

    def analyze_batch(self, images: Sequence[np.ndarray]) -> list[FaceResult]:
        """:meth:`analyze` for several images, with MTCNN batched across images of one size."""
        rgbs = [as_rgb(im) for im in images]
        found = self._locate(rgbs)
        return [
            decide(faces, by, (rgb.shape[1], rgb.shape[0]), self.policy, too_small=self._too_small(rgb), retried=self.retries)
            for rgb, (faces, by) in zip(rgbs, found)
        ]

    def detect(self, image: np.ndarray) -> tuple[FaceBox, ...]:
        """All faces above ``min_score``, in original image coordinates, best score first.

        When nothing is found and ``retries`` is on, enhanced copies are searched for faces large
        enough for a crop, in the order of :data:`RETRY_CHAIN`, until one yields a face.
        """
        return self._locate([as_rgb(image)])[0][0]

    def detect_enhanced(self, image: np.ndarray, *, enhancement: str) -> tuple[FaceBox, ...]:
        """Run the detector on one enhanced copy of the working image only (``"original"`` or a
        :data:`RETRY_CHAIN` name), for faces of any size, with boxes mapped back to ``image``'s
        coordinates. Useful for diagnosis."""
        if enhancement != "original" and enhancement not in RETRY_CHAIN:
            valid = ", ".join(("original",) + RETRY_CHAIN)
            raise ValueError(f"Unknown enhancement {enhancement!r}; valid: {valid}")
        rgb = as_rgb(image)
        if self._too_small(rgb):
            return ()
        working = _shrunk(rgb, self.max_side / max(rgb.shape[:2]))
        attempt = working if enhancement == "original" else enhanced(working, enhancement)
        return self._run_many([(attempt, self.min_face_size)], [rgb.shape])[0]

    # -- detection -------------------------------------------------------------------------------

    def _locate(self, rgbs: list[np.ndarray]) -> list[tuple[tuple[FaceBox, ...], str | None]]:
        """Faces (and the copy that found them) for each image: the originals first, in batches,
        then the retries of the images without a face, in batches."""
        out: list[tuple[tuple[FaceBox, ...], str | None]] = [((), None)] * len(rgbs)
        todo = [i for i, rgb in enumerate(rgbs) if not self._too_small(rgb)]
        working = [(_shrunk(rgbs[i], self.max_side / max(rgbs[i].shape[:2])), self.min_face_size) for i in todo]
        for i, faces in zip(todo, self._run_many(working, [rgbs[i].shape for i in todo])):
            if faces:
                out[i] = (faces, "original")
        if not self.retries:
            return out
        missing = [i for i in todo if not out[i][0]]
        attempts, shapes, owners = [], [], []
        for i in missing:
            base, min_face = self._retry_base(rgbs[i])
            for name in RETRY_CHAIN:
                attempt = enhanced(base, name)
                k = attempt.scale_x / base.scale_x
                attempts.append((attempt, max(self.min_face_size, round(min_face * k))))
                shapes.append(rgbs[i].shape)
                owners.append(i)
        for (attempt, _), i, faces in zip(attempts, owners, self._run_many(attempts, shapes)):
            if faces and not out[i][0]:  # attempts are in chain order: the first copy that finds a face wins
                logger.info("No face on the original; found %d on the %s copy", len(faces), attempt.name)
                out[i] = (faces, attempt.name)
        return out

    def _retry_base(self, rgb: np.ndarray) -> tuple[Attempt, int]:
        """The copy the retries start from, and the smallest face that could get a crop on it."""
        h, w = rgb.shape[:2]
        fraction = self.small_face_fraction
        if fraction <= 0:  # every face gets a crop: retries must see the working image
            return _shrunk(rgb, self.max_side / max(h, w)), self.min_face_size
        # At most retry_side^2 pixels and max_side on the long side, whatever the shape: each
        # enhanced copy is then bounded too (at most 4x its pixels: upscale-2x, pad).
        scale = min(1.0, self.retry_side / math.sqrt(h * w), self.max_side / max(h, w))
        base = _shrunk(rgb, scale)
        smallest_crop_face = math.sqrt(fraction * h * w) * base.scale_x
        return base, max(self.min_face_size, int(_RETRY_SLACK * smallest_crop_face))

    def _too_small(self, image: np.ndarray) -> bool:
        # The largest enhanced copy is 2x: below that, no attempt can reach MTCNN's minimum.
        return 2 * min(image.shape[:2]) < self.min_face_size

    def _run_many(self, attempts: list[tuple[Attempt, int]], shapes: list[tuple[int, ...]]) -> list[tuple[FaceBox, ...]]:
        """MTCNN on each (attempt, min face size), batched by image size; boxes mapped to the
        originals (of ``shapes``), above ``min_score``, best first."""
        results: list[tuple[FaceBox, ...]] = [()] * len(attempts)
        groups: dict[tuple[tuple[int, ...], int], list[int]] = {}
        for j, (attempt, min_face) in enumerate(attempts):
            # MTCNN's image pyramid is empty (and it raises) when the image is smaller than its
            # smallest face; such an image has no detectable face.
            if min(attempt.image.shape[:2]) >= min_face:
                groups.setdefault((attempt.image.shape, min_face), []).append(j)
        for (_, min_face), members in groups.items():
            for start in range(0, len(members), _MAX_BATCH):
                chunk = members[start : start + _MAX_BATCH]
                batch = np.stack([attempts[j][0].image for j in chunk])
                for j, (boxes, probs) in zip(chunk, self._mtcnn_detect(batch, min_face)):
                    h, w = shapes[j][:2]
                    results[j] = self._boxes(attempts[j][0], boxes, probs, w, h)
        return results

    def _mtcnn_detect(self, batch: np.ndarray, min_face_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """MTCNN's stages on a (B, H, W, 3) uint8 batch: (boxes (n, 4), probs (n,)) per image."""
        m = self.mtcnn
        images = torch.from_numpy(np.ascontiguousarray(batch)).to(m.device)
        with torch.inference_mode():
            found = detect_faces(
                images, pnet=m.pnet, rnet=m.rnet, onet=m.onet, thresholds=m.thresholds, factor=m.factor, min_face_size=min_face_size
            )
        return [(f[:, :4], f[:, 4]) for f in found]

    def _boxes(self, attempt: Attempt, boxes: np.ndarray, probs: np.ndarray, width: int, height: int) -> tuple[FaceBox, ...]:
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


def _shrunk(image: np.ndarray, scale: float) -> Attempt:
    """The image itself when ``scale >= 1``, else a copy downscaled by ``scale`` (area interpolation)."""
    if scale >= 1.0:
        return Attempt("original", image, 1.0, 1.0)
    h, w = image.shape[:2]
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    return Attempt("original", small, nw / w, nh / h)


_detectors: dict[str, FaceDetector] = {}
_detectors_lock = threading.Lock()


def get_default_detector(device: str | torch.device = "cpu") -> FaceDetector:
    """The process-wide shared :class:`FaceDetector` of ``device`` (created once), so MTCNN loads once."""
    key = str(torch.device(device))
    with _detectors_lock:
        if key not in _detectors:
            _detectors[key] = FaceDetector(device=key)
        return _detectors[key]
