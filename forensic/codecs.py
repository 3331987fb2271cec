"""Video codecs: H.264 (libx264 through PyAV) encode and decode of RGB uint8 images.

The one place that talks to a codec. The degradation lab's ``h264`` operation (and the
``ffpp-c23``/``ffpp-c40``/``df-compress-*`` presets) calls :func:`h264_roundtrip`; re-encoding
video clips reuses :func:`h264_encoder_options` so that stills and clips share one setting.

Settings: FaceForensics++ and DeeperForensics-1.0 compressed with ``ffmpeg -c:v libx264 -crf N``
and nothing else, so the encoder's defaults (preset ``medium``, no tune, profile ``high``) and the
input's ``yuv420p``. We add ``threads=1``: x264's output depends on its thread count (sliced and
frame-threaded rate control), and one thread makes the bytes the same on every machine.

How a still is encoded: as **one intra frame** (an IDR frame, exactly what every keyframe of an
FF++ video is). The alternative, a short static clip whose later frame is taken, was measured on
the astronaut at 512 px: CRF 23 gives 32.0 dB for the intra frame, 32.9 dB for frame 2 of a
2-frame clip and 34.0 dB for frame 5 of a 5-frame clip (CRF 40: 24.0, 24.9, 26.1 dB). A static
clip's P-frames only refine the picture they copy, so its quality depends on an arbitrary clip
length and never shows the motion-compensation artefacts of a real moving face; it also costs
1.4-2.3x the time. The intra frame is well defined and the cheapest; a real clip's P- and
B-frames are quantised more coarsely than its I-frames (x264's default ``ipratio`` 1.4 and
``pbratio`` 1.3, about +3 and +5 QP), which a single still cannot reproduce either way.

Odd sizes: ``yuv420p`` needs even sides, so the image is padded by replicating its last row and
column and the decoded picture is cropped back.
"""

from __future__ import annotations

import fractions

import numpy as np

__all__ = ["H264_CRF_RANGE", "h264_encoder_options", "h264_roundtrip"]

#: the constant rate factors libx264 accepts for 8-bit video (0 = lossless, 51 = worst)
H264_CRF_RANGE: tuple[int, int] = (0, 51)


def _av():
    try:
        import av
    except ImportError as exc:  # pragma: no cover - av is a pinned runtime requirement
        raise ImportError(
            "H.264 needs PyAV (the 'av' package, which ships FFmpeg with libx264): "
            "pip install -r requirements.txt"
        ) from exc
    return av


def h264_encoder_options(crf: int) -> dict[str, str]:
    """The libx264 private options for ``-crf crf`` with the encoder's defaults, single-threaded."""
    low, high = H264_CRF_RANGE
    if not low <= int(crf) <= high:
        raise ValueError(f"crf must be a whole number in {low}..{high}, got {crf}")
    return {"crf": str(int(crf)), "threads": "1"}


def h264_roundtrip(rgb: np.ndarray, crf: int) -> np.ndarray:
    """Encode an RGB uint8 image as one libx264 intra frame (yuv420p, ``-crf crf``) and decode it.

    Args:
        rgb: HxWx3 uint8 RGB, any size of at least 1x1 (odd sides are padded, then cropped back).
        crf: Constant rate factor, 0..51 (FaceForensics++ c23 = 23, c40 = 40).

    Returns:
        The decoded HxWx3 uint8 RGB image (BT.601 limited-range YUV both ways, as FFmpeg's
        default conversion of an RGB source).

    Raises:
        ValueError: a bad image or CRF.
        RuntimeError: the encoder or decoder produced no picture.
    """
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        got = f"{getattr(rgb, 'dtype', type(rgb).__name__)} {getattr(rgb, 'shape', '')}"
        raise ValueError(f"h264_roundtrip expects an RGB uint8 HxWx3 array, got {got}")
    options = h264_encoder_options(crf)
    av = _av()
    h, w = rgb.shape[:2]
    padded = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge") if (h % 2 or w % 2) else rgb
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height = padded.shape[1], padded.shape[0]
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = fractions.Fraction(1, 25)
    encoder.framerate = fractions.Fraction(25, 1)
    encoder.thread_count = 1
    encoder.options = options
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(padded), format="rgb24").reformat(format="yuv420p")
    frame.pts = 0
    packets = [*encoder.encode(frame), *encoder.encode(None)]
    decoder = av.CodecContext.create("h264", "r")
    decoder.thread_count = 1
    pictures = [picture for packet in packets for picture in decoder.decode(packet)]
    pictures += decoder.decode(None)
    if not pictures:  # pragma: no cover - libx264 always emits the frame after a flush
        raise RuntimeError("the H.264 encoder returned no picture")
    return np.ascontiguousarray(pictures[-1].to_ndarray(format="rgb24")[:h, :w])
