"""Face detection, fallbacks on degraded images, face selection policy and the face crop.

The Localized Facial stream of the paper sees a square crop around one face. This package finds
faces with facenet-pytorch's MTCNN (:mod:`.detector`), retries on enhanced copies when a degraded
image defeats the detector (:mod:`.enhance`, the idea of the authors' RetinaFace fallback chain),
picks one face with the authors' policy (:mod:`.policy`), and describes the crop as a
:class:`CropRegion` whose mapping to image coordinates is exact (:mod:`.geometry`), so that
heatmaps computed on the crop can be pasted back onto the image.
"""

from .detector import FaceDetector, get_default_detector
from .enhance import RETRY_CHAIN
from .geometry import CropRegion, FaceBox, as_rgb, square_region
from .policy import FaceMode, FacePolicy, FaceResult, decide, not_searched, select_face

__all__ = [
    "RETRY_CHAIN",
    "CropRegion",
    "FaceBox",
    "FaceDetector",
    "FaceMode",
    "FacePolicy",
    "FaceResult",
    "as_rgb",
    "decide",
    "get_default_detector",
    "not_searched",
    "select_face",
    "square_region",
]
