"""forensic.codecs: real H.264 (libx264 through PyAV) on stills."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from forensic.codecs import H264_CRF_RANGE, h264_encoder_options, h264_roundtrip
from forensic.degrade import psnr, ssim


@pytest.fixture(scope="module")
def photo(astronaut: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(astronaut[::2, ::2])  # 256x256


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (101, 77), (64, 48)])
def test_any_size_comes_back_at_its_size(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    img = (rng.random((*shape, 3)) * 255).astype(np.uint8)
    out = h264_roundtrip(img, 23)
    assert out.shape == img.shape and out.dtype == np.uint8 and out.flags.c_contiguous


def test_quality_falls_as_crf_rises_and_a_flat_image_survives(photo: np.ndarray) -> None:
    curve = [psnr(photo, h264_roundtrip(photo, crf)) for crf in (0, 23, 30, 40, 51)]
    assert all(a > b for a, b in zip(curve, curve[1:])), curve
    assert curve[0] > 35.0  # CRF 0 is lossless in YUV: only the 4:2:0 conversion is left
    assert ssim(photo, h264_roundtrip(photo, 40)) < ssim(photo, h264_roundtrip(photo, 23))
    grey = np.full((32, 48, 3), 128, dtype=np.uint8)
    assert np.abs(h264_roundtrip(grey, 40).astype(int) - 128).max() <= 1


def test_the_same_bytes_every_time_and_from_any_thread(photo: np.ndarray) -> None:
    assert h264_encoder_options(30) == {"crf": "30", "threads": "1"}  # one x264 thread: no thread-count dependence
    first = h264_roundtrip(photo, 30)
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda _: h264_roundtrip(photo, 30), range(6)))
    assert all(np.array_equal(out, first) for out in outs)


def test_odd_sides_are_padded_by_replication_and_cropped_back(photo: np.ndarray) -> None:
    odd = photo[:255, :253]
    even = np.pad(odd, ((0, 1), (0, 1), (0, 0)), mode="edge")  # yuv420p needs even sides
    assert np.array_equal(h264_roundtrip(odd, 23), h264_roundtrip(even, 23)[:255, :253])


@pytest.mark.parametrize("crf", [-1, 52])
def test_bad_crf_and_bad_image_say_what_is_valid(crf: int, photo: np.ndarray) -> None:
    with pytest.raises(ValueError, match=f"{H264_CRF_RANGE[0]}..{H264_CRF_RANGE[1]}"):
        h264_roundtrip(photo, crf)
    with pytest.raises(ValueError, match="RGB uint8"):
        h264_roundtrip(photo.astype(np.float32), 23)
