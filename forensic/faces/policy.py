"""The face policy: which detected face the face stream sees, and what it sees without one.

The authors' rules: the most confident face, position breaking near-ties; a face covering less
than 1/9 of the image, or no face, sends the whole image to the face stream. Each decision
carries a one-sentence reason for the user.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .enhance import RETRY_CHAIN, RETRY_WORDS
from .geometry import CropRegion, FaceBox, square_region

__all__ = ["FaceMode", "FacePolicy", "FaceResult", "decide", "not_searched", "select_face"]

FaceMode = Literal["crop", "small-face", "no-face"]

# Seed policy: when the two best scores are closer than this, position decides.
_SCORE_TIE = 0.02


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


def _notes(faces: tuple[FaceBox, ...], rule: str, found_by: str | None) -> str:
    parts = []
    if found_by not in (None, "original"):
        parts.append(f"found on the {RETRY_WORDS[found_by]} copy")
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



@dataclass(frozen=True)
class FacePolicy:
    """The paper's face rules.

    Attributes:
        small_face_fraction: a chosen face whose box covers less than this fraction of the image
            makes the face stream see the whole image (1/9 in the seed).
        crop_scale: side of the square crop relative to the larger box side (1.3 in the seed).
    """

    small_face_fraction: float = 1.0 / 9.0
    crop_scale: float = 1.3

    def __post_init__(self) -> None:
        if not 0.0 <= self.small_face_fraction <= 1.0:
            raise ValueError(f"small_face_fraction must be in [0, 1], got {self.small_face_fraction}")
        if self.crop_scale <= 0:
            raise ValueError(f"crop_scale must be positive, got {self.crop_scale}")


def decide(
    faces: tuple[FaceBox, ...],
    found_by: str | None,
    image_size: tuple[int, int],
    policy: FacePolicy = FacePolicy(),
    *,
    too_small: bool = False,
    retried: bool = False,
) -> FaceResult:
    """Select one face and decide what the face stream sees, with the sentence that says why.

    Args:
        faces: detections in image coordinates.
        found_by: ``"original"`` or the retry copy that found them (None when nothing was found).
        image_size: ``(w, h)`` of the image.
        policy: the small-face and crop rules.
        too_small: the image was too small for the detector (said in the reason).
        retried: the retry chain ran (said in the reason when nothing was found).

    Returns:
        ``crop`` with the square region, or ``small-face`` / ``no-face`` with the whole image.
    """
    w, h = image_size
    whole = CropRegion(0.0, 0.0, float(w), float(h))
    chosen, rule = _select(faces, (w, h))
    if chosen is None:
        tried = ""
        if too_small:
            tried = f" (the {w}x{h} image is too small for the detector)"
        elif retried:
            words = _join_words([RETRY_WORDS[n] for n in RETRY_CHAIN])
            tried = f" (also tried {words} copies, looking for a face large enough for a crop)"
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
    if fraction < policy.small_face_fraction:
        return FaceResult(
            mode="small-face",
            box=chosen,
            region=whole,
            faces=faces,
            found_by=found_by,
            reason=(
                f"Face covers {_percent(fraction)} of the image "
                f"(< {_fraction_text(policy.small_face_fraction)})"
                f"{notes}: too small for a face crop, so the face stream falls back to the whole image, as in the paper."
            ),
            image_size=(w, h),
        )
    return FaceResult(
        mode="crop",
        box=chosen,
        region=square_region(chosen, scale=policy.crop_scale, image_size=(w, h)),
        faces=faces,
        found_by=found_by,
        reason=(
            f"Face found (score {chosen.score:.2f}, covers {_percent(fraction)} of the image)"
            f"{notes}: the face stream sees a {policy.crop_scale:g}x square crop around it."
        ),
        image_size=(w, h),
    )


def not_searched(image_size: tuple[int, int]) -> FaceResult:
    """The face result of a model without a face stream: nothing searched, the whole image."""
    w, h = image_size
    return FaceResult(
        mode="no-face",
        box=None,
        region=CropRegion(0.0, 0.0, float(w), float(h)),
        faces=(),
        found_by=None,
        reason="This model has no face stream, so faces were not searched.",
        image_size=(w, h),
    )
