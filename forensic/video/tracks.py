"""Face tracks across a clip's sampled frames, scene cuts, and the main track the face stream follows.

The faces found on each sampled frame are linked into *tracks*: a face continues the track whose
last box overlaps it most (intersection over union at least ``min_iou``), or, when frames sampled
a second apart let a moving face slip past that, whose last box is within ``max_shift`` box sides
of it and of a similar size. A track survives up to ``max_gap`` sampled frames without its face
(a blink of the detector). A *scene cut* ends every track: a face after a cut is a new track even
where the box did not move, so a clip whose face changes person at a cut has two tracks.

A cut is a big change between consecutive sampled frames: the mean absolute difference of their
32x32 grey thumbnails (:func:`thumbnail`, blurred with a Gaussian of sigma 1.5 thumbnail pixels so
that they compare the frame's layout, not its fine detail) above :data:`CUT_THRESHOLD` grey levels
(of 255). Measured on the test clips: the same frame with an artifact planted in it 0, a pan of 5%
of the width 16, two different photos 44-57; a pan of 60% of the width between two samples crosses
the threshold (about 40), which then starts new tracks, as a cut would.

The *main* track (:func:`main_track`) is the longest; among equally long ones the largest (mean box
area), then the most central (mean distance of the box centre to the image centre).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..faces import FaceBox

__all__ = ["Track", "link_tracks", "main_track", "thumbnail", "is_cut", "CUT_THRESHOLD", "THUMBNAIL_SIDE",
           "THUMBNAIL_BLUR", "iou"]

#: side of the grey thumbnails compared for scene cuts
THUMBNAIL_SIDE = 32
#: mean absolute difference (grey levels of 255) of consecutive thumbnails above which a cut is declared
CUT_THRESHOLD = 30.0
#: sigma (thumbnail pixels) of the blur applied to the thumbnails
THUMBNAIL_BLUR = 1.5


@dataclass(frozen=True)
class Track:
    """One face followed over sampled frames.

    Attributes:
        id: 0, 1, ... in the order the tracks started.
        members: ``(frame index, box)`` pairs in frame order (the frame index is the position in
            the sampled frames, :attr:`forensic.video.Frame.index`).
    """

    id: int
    members: tuple[tuple[int, FaceBox], ...]

    @property
    def first(self) -> int:
        """The first frame with this face."""
        return self.members[0][0]

    @property
    def last(self) -> int:
        """The last frame with this face."""
        return self.members[-1][0]

    @property
    def length(self) -> int:
        """How many frames have this face."""
        return len(self.members)

    @property
    def frames(self) -> tuple[int, ...]:
        """The frame indexes with this face."""
        return tuple(i for i, _ in self.members)

    @property
    def mean_area(self) -> float:
        return sum(b.area for _, b in self.members) / len(self.members)

    def box_at(self, index: int) -> FaceBox | None:
        """The face's box on frame ``index``, or None where the track has no face."""
        for i, box in self.members:
            if i == index:
                return box
        return None

    def overlaps(self, other: Track) -> bool:
        """Whether the two tracks share a stretch of time (their frame spans intersect)."""
        return self.first <= other.last and other.first <= self.last


def iou(a: FaceBox, b: FaceBox) -> float:
    """Intersection over union of two boxes (0 when either is empty)."""
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    inter = max(w, 0.0) * max(h, 0.0)
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


def _near(a: FaceBox, b: FaceBox, max_shift: float) -> bool:
    """Same size within 1.5x (side) and centres within ``max_shift`` mean box sides."""
    sa, sb = math.sqrt(max(a.area, 1e-9)), math.sqrt(max(b.area, 1e-9))
    if max(sa, sb) > 1.5 * min(sa, sb):
        return False
    (ax, ay), (bx, by) = a.center, b.center
    return math.hypot(ax - bx, ay - by) <= max_shift * (sa + sb) / 2.0


def link_tracks(
    per_frame: Sequence[Sequence[FaceBox]],
    *,
    cuts: Iterable[int] = (),
    min_iou: float = 0.3,
    max_gap: int = 2,
    max_shift: float = 1.0,
) -> list[Track]:
    """Links each sampled frame's faces into tracks (see the module's docstring).

    Args:
        per_frame: the boxes found on each sampled frame, in frame order.
        cuts: frame indexes that start a new scene (a cut between frame ``i - 1`` and ``i``).
        min_iou: the overlap at which a face continues a track.
        max_gap: sampled frames a track may miss its face and still continue.
        max_shift: when no track overlaps enough, a face of similar size whose centre moved at most
            this many box sides continues the nearest track (faces move between frames sampled
            a second apart).

    Returns:
        The tracks, by id (the order they started). Within a frame each track takes at most one
        face, the best-overlapping pairs first.
    """
    if not 0.0 < min_iou <= 1.0:
        raise ValueError(f"min_iou must be in (0, 1], got {min_iou}")
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0, got {max_gap}")
    cut_set = set(cuts)
    members: list[list[tuple[int, FaceBox]]] = []
    active: list[int] = []  # track ids that may still continue
    for index, boxes in enumerate(per_frame):
        if index in cut_set:
            active = []
        active = [t for t in active if index - members[t][-1][0] - 1 <= max_gap]
        pairs = []
        for t in active:
            last = members[t][-1][1]
            for j, box in enumerate(boxes):
                overlap = iou(last, box)
                if overlap >= min_iou:
                    pairs.append((0, -overlap, t, j))
                elif _near(last, box, max_shift):
                    (lx, ly), (bx, by) = last.center, box.center
                    pairs.append((1, math.hypot(lx - bx, ly - by), t, j))
        taken_tracks: set[int] = set()
        taken_boxes: set[int] = set()
        for _, _, t, j in sorted(pairs):
            if t in taken_tracks or j in taken_boxes:
                continue
            members[t].append((index, boxes[j]))
            taken_tracks.add(t)
            taken_boxes.add(j)
        for j, box in enumerate(boxes):
            if j not in taken_boxes:
                members.append([(index, box)])
                active.append(len(members) - 1)
    return [Track(i, tuple(m)) for i, m in enumerate(members)]


def main_track(tracks: Sequence[Track], image_size: tuple[int, int]) -> Track | None:
    """The track the face stream follows: the longest, then the largest (mean box area), then the
    most central (mean distance of its box centres to the centre of a ``(w, h)`` image); None
    without tracks."""
    if not tracks:
        return None
    cx, cy = image_size[0] / 2.0, image_size[1] / 2.0

    def off_centre(track: Track) -> float:
        return sum(math.hypot(b.center[0] - cx, b.center[1] - cy) for _, b in track.members) / track.length

    return min(tracks, key=lambda t: (-t.length, -t.mean_area, off_centre(t), t.id))


def thumbnail(image: np.ndarray) -> np.ndarray:
    """A :data:`THUMBNAIL_SIDE`-square grey float32 copy of an RGB uint8 image, blurred (for cut detection)."""
    grey = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (THUMBNAIL_SIDE, THUMBNAIL_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32)
    return cv2.GaussianBlur(small, (0, 0), THUMBNAIL_BLUR)


def is_cut(previous: np.ndarray | None, current: np.ndarray, threshold: float = CUT_THRESHOLD) -> bool:
    """Whether two consecutive thumbnails (:func:`thumbnail`) differ by a scene cut."""
    if previous is None:
        return False
    return float(np.mean(np.abs(current - previous))) > threshold
