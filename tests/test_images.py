"""forensic.images: safe decoding of untrusted input, checked on a generated corpus of good and bad files."""

from __future__ import annotations

import dataclasses
import io
import os
import struct
import time
import zlib
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile, features

from forensic.images import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_SIDE,
    MAX_PIXELS_ENV,
    DecodedImage,
    ImageError,
    decode_image,
    default_max_pixels,
    ensure_rgb_uint8,
    load_image,
)

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


# ----------------------------------------------------------------------------------------------
# corpus builders


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def _png_header_only(width: int, height: int) -> bytes:
    """A well-formed PNG (correct CRCs) whose IHDR claims width x height RGB but carries ~no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def _noise(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _quadrants_rgb(size: int = 64) -> np.ndarray:
    """Four flat quadrants: red, green / blue, white."""
    half = size // 2
    array = np.zeros((size, size, 3), np.uint8)
    array[:half, :half] = RED
    array[:half, half:] = GREEN
    array[half:, :half] = BLUE
    array[half:, half:] = WHITE
    return array


def _cmyk_jpeg() -> bytes:
    # Pillow writes CMYK JPEGs Adobe-style (inverted), the case that naive decoders get wrong.
    image = Image.new("CMYK", (64, 64), (0, 255, 255, 0))  # pure red
    image.paste((0, 0, 0, 0), (32, 0, 64, 32))  # white
    image.paste((0, 0, 0, 255), (0, 32, 32, 64))  # black
    image.paste((255, 0, 255, 0), (32, 32, 64, 64))  # pure green
    return _encode(image, "JPEG", quality=95)


def _gray16_png() -> bytes:
    array = np.zeros((32, 48), np.uint16)
    array[:, :16] = 65535
    array[:, 16:32] = 32768
    array[:, 32:] = 0
    ok, buffer = cv2.imencode(".png", array)
    assert ok
    return buffer.tobytes()


def _rgb16_png() -> bytes:
    rgb = np.zeros((32, 32, 3), np.uint16)
    rgb[..., 0] = 65535
    rgb[..., 1] = 32768
    rgb[..., 2] = 257 * 100
    ok, buffer = cv2.imencode(".png", rgb[..., ::-1].copy())  # cv2 writes BGR
    assert ok
    return buffer.tobytes()


def _palette_png_with_transparency() -> bytes:
    image = Image.new("P", (32, 32), 0)
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * (256 - 2) * 3)
    image.paste(1, (16, 0, 32, 32))  # right half: index 1 (blue), declared transparent
    return _encode(image, "PNG", transparency=1)


def _animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (32, 32), colour) for colour in (RED, BLUE, GREEN)]
    kwargs = {"save_all": True, "append_images": frames[1:], "duration": 100, "loop": 0}
    if fmt == "WEBP":
        kwargs["lossless"] = True
    return _encode(frames[0], fmt, **kwargs)


def _exif_rotated_jpeg() -> tuple[bytes, np.ndarray]:
    """A 64x32 (WxH) JPEG, left half red and right half blue, with EXIF orientation 6."""
    stored = np.zeros((32, 64, 3), np.uint8)
    stored[:, :32] = RED
    stored[:, 32:] = BLUE
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encode(Image.fromarray(stored), "JPEG", quality=95, exif=exif.tobytes()), stored


def _rgba_png() -> bytes:
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., :3] = RED
    rgba[:, :16, 3] = 0  # fully transparent
    rgba[:, 16:, 3] = 128  # half transparent red
    return _encode(Image.fromarray(rgba, "RGBA"), "PNG")


def _la_png() -> bytes:
    la = np.zeros((32, 32, 2), np.uint8)
    la[..., 0] = 100
    la[:16, :, 1] = 0
    la[16:, :, 1] = 255
    return _encode(Image.fromarray(la, "LA"), "PNG")


def _jpeg_noise() -> bytes:
    return _encode(Image.fromarray(_noise((128, 128, 3))), "JPEG", quality=90)


def _png_noise() -> bytes:
    return _encode(Image.fromarray(_noise((128, 128, 3), seed=1)), "PNG")


# name -> (file name to use on disk, bytes). Every entry must decode or raise ImageError.
_CORPUS: dict[str, Callable[[], tuple[str, bytes]]] = {
    "empty": lambda: ("empty.jpg", b""),
    "text-named-jpg": lambda: ("notes.jpg", b"This is not a picture, just some notes.\n" * 3),
    "html": lambda: ("photo.jpg", b"<!DOCTYPE html><html><head><title>Photo</title></head></html>"),
    "svg": lambda: ("logo.png", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>'),
    "pdf": lambda: ("scan.jpg", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"),
    "heic": lambda: ("IMG_0001.jpg", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64),
    "zip": lambda: ("images.png", b"PK\x03\x04" + bytes(range(256))),
    "random-bytes": lambda: ("random.png", bytes(_noise((4096,), seed=7))),
    "truncated-jpeg": lambda: ("half.jpg", (d := _jpeg_noise())[: len(d) // 2]),
    "truncated-png": lambda: ("half.png", (d := _png_noise())[: len(d) // 2]),
    "png-header-only": lambda: ("head.png", _png_noise()[:40]),
    "bomb-50000": lambda: ("bomb.png", _png_header_only(50000, 50000)),
    "bomb-9000x8000": lambda: ("big.png", _png_header_only(9000, 8000)),
    "pcx-not-allowed": lambda: ("old.pcx", _encode(Image.new("RGB", (32, 32), RED), "PCX")),
    "one-pixel": lambda: ("dot.png", _encode(Image.new("RGB", (1, 1), RED), "PNG")),
    "cmyk-jpeg": lambda: ("cmyk.jpg", _cmyk_jpeg()),
    "gray16-png": lambda: ("gray16.png", _gray16_png()),
    "rgb16-png": lambda: ("rgb16.png", _rgb16_png()),
    "palette-transparent-png": lambda: ("pal.png", _palette_png_with_transparency()),
    "animated-gif": lambda: ("anim.gif", _animated("GIF")),
    "animated-png": lambda: ("anim.png", _animated("PNG")),
    "exif-rotated-jpeg": lambda: ("rotated.jpg", _exif_rotated_jpeg()[0]),
    "rgba-png": lambda: ("rgba.png", _rgba_png()),
    "la-png": lambda: ("la.png", _la_png()),
    "bilevel-png": lambda: ("bw.png", _encode(Image.new("1", (32, 32), 1), "PNG")),
    "float-tiff": lambda: ("float.tif", _encode(Image.fromarray(np.full((32, 32), 0.5, np.float32)), "TIFF")),
    "good-jpeg": lambda: ("good.jpg", _jpeg_noise()),
    "good-bmp": lambda: ("good.bmp", _encode(Image.new("RGB", (32, 32), BLUE), "BMP")),
}
if features.check("webp"):
    _CORPUS["animated-webp"] = lambda: ("anim.webp", _animated("WEBP"))


def _assert_valid(result: DecodedImage) -> None:
    pixels = result.pixels
    assert isinstance(pixels, np.ndarray)
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3
    assert pixels.flags.c_contiguous
    assert (result.width, result.height) == (pixels.shape[1], pixels.shape[0])


def _assert_clean_error(error: ImageError) -> None:
    message = str(error)
    assert message and "\n" not in message
    assert message[0].isupper()


def _decode_error(source, **kwargs) -> str:
    with pytest.raises(ImageError) as info:
        decode_image(source, **kwargs)
    _assert_clean_error(info.value)
    return str(info.value)


# ----------------------------------------------------------------------------------------------
# the whole corpus: nothing but ImageError ever escapes


@pytest.mark.parametrize("how", ["path", "bytes", "bytesio"])
@pytest.mark.parametrize("name", sorted(_CORPUS))
def test_corpus_decodes_or_raises_image_error_only(name: str, how: str, tmp_path: Path) -> None:
    file_name, data = _CORPUS[name]()
    if how == "path":
        source: object = tmp_path / file_name
        (tmp_path / file_name).write_bytes(data)
    elif how == "bytes":
        source = data
    else:
        source = io.BytesIO(data)
    try:
        result = decode_image(source)
    except ImageError as error:
        _assert_clean_error(error)
    else:
        _assert_valid(result)


def _mutations(data: bytes, count: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        buffer = bytearray(data)
        positions = rng.integers(0, len(buffer), size=int(rng.integers(1, 8)))
        for position in positions:
            buffer[position] = int(rng.integers(0, 256))
        if rng.random() < 0.3:
            buffer = buffer[: int(rng.integers(1, len(buffer)))]
        out.append(bytes(buffer))
    return out


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about damaged metadata it skips
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "TIFF", "BMP", "WEBP"])
def test_fuzzed_files_raise_only_image_error(fmt: str) -> None:
    if fmt == "WEBP" and not features.check("webp"):
        pytest.skip("Pillow built without WebP")
    original = _encode(Image.fromarray(_noise((24, 24, 3), seed=3)), fmt)
    outcomes = {"ok": 0, "error": 0}
    for mutated in _mutations(original, count=25, seed=11):
        try:
            result = decode_image(mutated)
        except ImageError as error:
            _assert_clean_error(error)
            outcomes["error"] += 1
        else:
            _assert_valid(result)
            outcomes["ok"] += 1
    assert outcomes["ok"] + outcomes["error"] == 25


# ----------------------------------------------------------------------------------------------
# bad inputs: the message says what is wrong and what to do


@pytest.mark.parametrize(
    ("name", "keywords"),
    [
        ("empty", ["empty", "0 bytes", "JPEG, PNG"]),
        ("text-named-jpg", ["text", ".jpg", "upload"]),
        ("html", ["web page", "HTML", "Save image as"]),
        ("svg", ["SVG", "PNG"]),
        ("pdf", ["PDF", "export"]),
        ("heic", ["HEIC", "convert it to JPEG"]),
        ("zip", ["ZIP", "extract"]),
        ("random-bytes", ["not a recognised image", "upload"]),
        ("truncated-jpeg", ["truncated", "complete file"]),
        ("truncated-png", ["truncated", "complete file"]),
        ("pcx-not-allowed", ["not a recognised image"]),
        ("one-pixel", ["1x1 pixels", "at least 16x16"]),
    ],
)
def test_bad_input_messages(name: str, keywords: list[str], tmp_path: Path) -> None:
    file_name, data = _CORPUS[name]()
    path = tmp_path / file_name
    path.write_bytes(data)
    message = _decode_error(path)
    for keyword in keywords:
        assert keyword.lower() in message.lower(), (keyword, message)
    assert str(tmp_path) not in message  # no temp-folder paths leak into user-facing messages


def test_one_pixel_message_is_exact() -> None:
    message = _decode_error(_encode(Image.new("RGB", (1, 1), RED), "PNG"))
    assert message == "The image is 1x1 pixels; at least 16x16 is needed."


def test_min_side_is_configurable() -> None:
    data = _encode(Image.new("RGB", (20, 10), RED), "PNG")
    assert "at least 16x16" in _decode_error(data)
    assert decode_image(data, min_side=8).pixels.shape == (10, 20, 3)
    assert "at least 32x32" in _decode_error(decode_image(data, min_side=8).pixels, min_side=32)


def test_missing_path_directory_and_url(tmp_path: Path) -> None:
    assert "not found" in _decode_error(tmp_path / "nope.jpg").lower()
    assert "'nope.jpg'" in _decode_error(str(tmp_path / "nope.jpg"))
    assert "folder" in _decode_error(tmp_path)
    assert "URL" in _decode_error("https://example.com/face.jpg")
    assert "path" in _decode_error("bad\x00name.jpg")


def test_unsupported_source_types() -> None:
    assert "Unsupported input type int" in _decode_error(42)
    assert "text mode" in _decode_error(io.StringIO("hello"))


def test_invalid_options_are_programming_errors() -> None:
    data = _encode(Image.new("RGB", (32, 32), RED), "PNG")
    with pytest.raises(ValueError, match="max_pixels"):
        decode_image(data, max_pixels=0)
    with pytest.raises(ValueError, match="min_side"):
        decode_image(data, min_side=0)


# ----------------------------------------------------------------------------------------------
# decompression bombs are refused from the header, before decoding


@pytest.fixture()
def load_spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    for cls in (Image.Image, ImageFile.ImageFile):
        original = cls.load

        def spy(self, _original=original, _name=cls.__name__):
            calls.append(_name)
            return _original(self)

        monkeypatch.setattr(cls, "load", spy)
    return calls


@pytest.mark.parametrize("how", ["bytes", "path"])
def test_bomb_50000_refused_instantly_without_decoding(load_spy: list[str], how: str, tmp_path: Path) -> None:
    data = _png_header_only(50000, 50000)
    source: object = data
    if how == "path":
        source = tmp_path / "bomb.png"
        source.write_bytes(data)
    start = time.perf_counter()
    message = _decode_error(source)
    elapsed = time.perf_counter() - start
    assert load_spy == []  # refused on the header, no pixel decoded
    assert elapsed < 5  # decoding it would take minutes and ~7.5 GB
    assert "2500.0 megapixels" in message and "64.0 megapixels" in message
    assert "downscale" in message


def test_bomb_under_pillows_limit_is_refused_by_ours(load_spy: list[str]) -> None:
    message = _decode_error(_png_header_only(9000, 8000))
    assert load_spy == []
    assert "9000x8000 pixels (72.0 megapixels)" in message
    assert "limit of 64.0 megapixels" in message
    assert "at most 8485x7542" in message  # the suggested size keeps the aspect and fits the limit
    assert 8485 * 7542 <= DEFAULT_MAX_PIXELS
    lazy = Image.open(io.BytesIO(_png_header_only(9000, 8000)))  # a PIL source not loaded yet
    assert "9000x8000" in _decode_error(lazy)
    assert load_spy == []


@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
def test_pillow_bomb_warning_as_error_becomes_image_error(load_spy: list[str]) -> None:
    message = _decode_error(_png_header_only(10000, 10000))
    assert load_spy == []
    assert "100.0 megapixels" in message and "megapixels" in message.split("limit of")[1]


def test_max_pixels_argument_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _encode(Image.new("RGB", (40, 40), RED), "PNG")
    assert "40x40 pixels" in _decode_error(data, max_pixels=1000)
    monkeypatch.setenv(MAX_PIXELS_ENV, "1000")
    assert default_max_pixels() == 1000
    assert "limit of 0.0 megapixels" in _decode_error(data)
    assert decode_image(data, max_pixels=1600).pixels.shape == (40, 40, 3)  # explicit wins
    assert "limit" in _decode_error(np.zeros((40, 40, 3), np.uint8))  # arrays are limited too
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(ValueError, match=MAX_PIXELS_ENV):
        decode_image(data)
    monkeypatch.delenv(MAX_PIXELS_ENV)
    assert default_max_pixels() == DEFAULT_MAX_PIXELS == 64_000_000
    assert DEFAULT_MIN_SIDE == 16


# ----------------------------------------------------------------------------------------------
# good inputs: correct colours, shapes and notes


def test_cmyk_jpeg_colours() -> None:
    result = decode_image(_cmyk_jpeg())
    assert result.original_mode == "CMYK" and result.format == "JPEG"
    pixels = result.pixels.astype(int)
    centres = {(16, 16): RED, (16, 48): WHITE, (48, 16): (0, 0, 0), (48, 48): GREEN}
    for (row, col), expected in centres.items():
        np.testing.assert_allclose(pixels[row, col], expected, atol=8)
    assert "CMYK image converted to RGB" in result.notes


def test_gray16_png_scaled_not_clipped() -> None:
    result = decode_image(_gray16_png())
    assert result.original_mode.startswith("I;16")
    pixels = result.pixels.astype(int)
    assert np.all(np.abs(pixels[:, :16] - 255) <= 1)
    assert np.all(np.abs(pixels[:, 16:32] - 128) <= 1)
    assert np.all(pixels[:, 32:] == 0)
    assert "16-bit image converted to 8-bit" in result.notes


def test_rgb16_png_scaled_not_clipped() -> None:
    result = decode_image(_rgb16_png())
    assert result.original_mode == "RGB" and result.format == "PNG"
    np.testing.assert_allclose(result.pixels.reshape(-1, 3).astype(int), [[255, 128, 100]] * 32 * 32, atol=1)
    assert "16-bit image converted to 8-bit" in result.notes


def test_palette_transparency_becomes_white() -> None:
    result = decode_image(_palette_png_with_transparency())
    assert result.original_mode == "P"
    assert np.all(result.pixels[:, :16] == RED)
    assert np.all(result.pixels[:, 16:] == WHITE)
    assert "transparency flattened onto white" in result.notes


def test_rgba_and_la_flattened_on_white() -> None:
    rgba = decode_image(_rgba_png())
    assert rgba.original_mode == "RGBA"
    assert np.all(rgba.pixels[:, :16] == WHITE)
    assert np.all(rgba.pixels[:, 16:] == (255, 127, 127))  # 50% red over white
    assert "transparency flattened onto white" in rgba.notes
    la = decode_image(_la_png())
    assert la.original_mode == "LA"
    assert np.all(la.pixels[:16] == WHITE)
    assert np.all(la.pixels[16:] == (100, 100, 100))


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_animated_first_frame(fmt: str) -> None:
    if fmt == "WEBP" and not features.check("webp"):
        pytest.skip("Pillow built without WebP")
    result = decode_image(_animated(fmt))
    np.testing.assert_allclose(result.pixels.reshape(-1, 3).astype(int), [RED] * 32 * 32, atol=2)
    assert "animated image: analysed the first of 3 frames" in result.notes


def test_exif_orientation_applied() -> None:
    data, stored = _exif_rotated_jpeg()
    result = decode_image(data)
    assert result.original_size == (64, 32)
    assert result.pixels.shape == (64, 32, 3)  # transposed
    assert (result.width, result.height) == (32, 64)
    # orientation 6 = rotate 90° clockwise for display: the stored left half (red) ends on top
    expected = np.rot90(stored, k=-1).astype(int)
    away_from_edge = np.r_[0:24, 40:64]  # JPEG chroma subsampling smears the red/blue border
    assert np.abs(result.pixels[away_from_edge].astype(int) - expected[away_from_edge]).max() <= 8
    np.testing.assert_allclose(result.pixels[8, 16], RED, atol=8)
    np.testing.assert_allclose(result.pixels[56, 16], BLUE, atol=8)
    # and exactly the same pixels as the stored JPEG rotated by numpy
    plain = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    np.testing.assert_array_equal(result.pixels, np.rot90(plain, k=-1))
    assert "EXIF orientation applied (rotated 90°)" in result.notes


def test_other_modes_convert_correctly() -> None:
    bilevel = decode_image(_encode(Image.new("1", (32, 32), 1), "PNG"))
    assert np.all(bilevel.pixels == 255) and bilevel.original_mode == "1"
    grey = decode_image(Image.new("L", (32, 32), 77))
    assert np.all(grey.pixels == 77)
    assert "greyscale image copied to the three RGB channels" in grey.notes
    floats = decode_image(_CORPUS["float-tiff"]()[1])
    assert floats.original_mode == "F" and floats.format == "TIFF"
    assert np.all(np.abs(floats.pixels.astype(int) - 128) <= 1)
    int32 = decode_image(Image.fromarray(np.full((32, 32), 32768, np.int32)))
    assert int32.original_mode == "I" and np.all(np.abs(int32.pixels.astype(int) - 128) <= 1)
    ycbcr = decode_image(Image.new("RGB", (32, 32), BLUE).convert("YCbCr"))
    assert np.abs(ycbcr.pixels.astype(int) - BLUE).max() <= 3
    palette = decode_image(Image.new("RGB", (32, 32), GREEN).convert("P"))
    assert np.all(palette.pixels == GREEN)
    assert "transparency flattened onto white" not in palette.notes


# ----------------------------------------------------------------------------------------------
# every kind of source gives the same pixels


def test_all_source_kinds_agree(tmp_path: Path) -> None:
    expected = _quadrants_rgb()
    data = _encode(Image.fromarray(expected), "PNG")
    path = tmp_path / "quad.png"
    path.write_bytes(data)
    with open(path, "rb") as handle:
        from_handle = decode_image(handle)
    sources = {
        "str": str(path),
        "path": path,
        "bytes": data,
        "bytearray": bytearray(data),
        "memoryview": memoryview(data),
        "bytesio": io.BytesIO(data),
        "pil": Image.open(io.BytesIO(data)),
        "numpy": expected,
    }
    results = {name: decode_image(source) for name, source in sources.items()}
    results["handle"] = from_handle
    for name, result in results.items():
        np.testing.assert_array_equal(result.pixels, expected, err_msg=name)
        assert result.original_size == (64, 64)
    assert results["path"].format == "PNG" and results["numpy"].format is None
    np.testing.assert_array_equal(load_image(path), expected)


def test_pil_source_is_left_usable() -> None:
    image = Image.new("RGBA", (32, 32), (0, 0, 255, 0))
    result = decode_image(image)
    assert np.all(result.pixels == WHITE)
    assert image.mode == "RGBA" and image.getpixel((0, 0)) == (0, 0, 255, 0)


def test_decoded_image_is_frozen() -> None:
    result = decode_image(_quadrants_rgb())
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.format = "PNG"  # type: ignore[misc]


# ----------------------------------------------------------------------------------------------
# numpy input and ensure_rgb_uint8


@pytest.mark.parametrize(
    ("array", "expected", "mode"),
    [
        (np.full((20, 20), 9, np.uint8), (9, 9, 9), "L"),
        (np.full((20, 20, 1), 9, np.uint8), (9, 9, 9), "L"),
        (np.full((20, 20, 3), (1, 2, 3), np.uint8), (1, 2, 3), "RGB"),
        (np.full((20, 20, 4), (255, 0, 0, 0), np.uint8), WHITE, "RGBA"),
        (np.full((20, 20), 32768, np.uint16), (128, 128, 128), "I;16"),
        (np.full((20, 20, 3), (65535, 0, 257), np.uint16), (255, 0, 1), "RGB uint16"),
        (np.full((20, 20, 3), (1.0, 0.5, 0.0), np.float32), (255, 128, 0), "RGB float32"),
        (np.full((20, 20), 0.25, np.float64), (64, 64, 64), "F"),
        (np.ones((20, 20), bool), WHITE, "1"),
    ],
)
def test_numpy_layouts(array: np.ndarray, expected: tuple[int, int, int], mode: str) -> None:
    result = decode_image(array)
    _assert_valid(result)
    assert result.pixels.shape == (20, 20, 3)
    assert np.all(result.pixels == expected)
    assert result.original_mode == mode
    np.testing.assert_array_equal(ensure_rgb_uint8(array), result.pixels)


@pytest.mark.parametrize(
    ("array", "keyword"),
    [
        (np.zeros((20, 20, 2), np.uint8), "shape"),
        (np.zeros((2, 20, 20, 3), np.uint8), "shape"),
        (np.zeros((20,), np.uint8), "shape"),
        (np.zeros((20, 20, 3), np.int32), "dtype"),
        (np.zeros((20, 20, 3), np.complex64), "dtype"),
        (np.zeros((20, 20, 3), object), "dtype"),
        (np.full((20, 20, 3), 200.0), "divide by 255"),
        (np.full((20, 20, 3), -0.5), "0..1"),
        (np.full((20, 20, 3), np.nan), "NaN"),
        (np.zeros((0, 20, 3), np.uint8), "empty"),
    ],
)
def test_numpy_rejections(array: np.ndarray, keyword: str) -> None:
    assert keyword in _decode_error(array)
    with pytest.raises(ImageError, match=keyword):
        ensure_rgb_uint8(array)


def test_numpy_source_is_copied_and_made_contiguous() -> None:
    array = _quadrants_rgb()
    result = decode_image(array)
    array[:] = 0
    assert result.pixels.max() == 255  # the caller's later writes do not change our copy
    bgr_view = _quadrants_rgb()[:, :, ::-1]
    assert decode_image(bgr_view).pixels.flags.c_contiguous


def test_ensure_rgb_uint8_passes_valid_arrays_through() -> None:
    array = _quadrants_rgb()
    assert ensure_rgb_uint8(array) is array
    tiny = np.zeros((2, 2, 3), np.uint8)  # no size limits for arrays handed over by code
    assert ensure_rgb_uint8(tiny) is tiny
    with pytest.raises(ImageError, match="numpy array"):
        ensure_rgb_uint8([[0, 0, 0]])


# ----------------------------------------------------------------------------------------------
# special files are refused from their stat, never opened


def _decode_in_thread(path: Path) -> tuple[bool, str]:
    """(finished within 10 s, the ImageError message): a hang must fail the test, not freeze it."""
    import threading

    from tests import awkward

    outcome: list[str] = []
    worker = threading.Thread(target=lambda: outcome.append(_decode_error(path)), daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():
        awkward.unblock_fifo(path)  # let the stuck reader go
        worker.join(timeout=10)
        return False, outcome[0] if outcome else ""
    return True, outcome[0]


def test_fifo_is_refused_at_once_without_being_opened(tmp_path: Path) -> None:
    from tests import awkward

    pipe = awkward.fifo(tmp_path, "photo.png")
    finished, message = _decode_in_thread(pipe)
    assert finished, "decoding a FIFO waited for a writer"
    assert message == ("The path 'photo.png' is a named pipe (FIFO), not an image file: "
                       "pass the path of a regular image file.")
    assert "a named pipe" in _decode_error(str(pipe))


def test_devices_are_refused() -> None:
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero on this OS")
    # /dev/zero would be read until memory runs out; /dev/null reads as an empty file
    assert "is a device, not an image file" in _decode_error("/dev/zero")
    assert "is a device, not an image file" in _decode_error(Path("/dev/null"))


# ----------------------------------------------------------------------------------------------
# fit: scaled down while decoding


def _smooth(width: int, height: int) -> np.ndarray:
    """A smooth colour ramp, so every way of scaling it down agrees closely."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([255 * x / width, 255 * y / height, 128 + 0 * x], axis=-1).astype(np.uint8)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_fit_scales_down_while_decoding_like_an_area_resize(fmt: str) -> None:
    pixels = _smooth(1600, 1200)
    data = _encode(Image.fromarray(pixels), fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    result = decode_image(data, fit=400 * 300)
    assert result.pixels.shape == (300, 400, 3) and result.pixels.flags.c_contiguous
    assert result.original_size == (1600, 1200)
    assert result.notes[-1] == "Analysed a 400x300 copy of the 1600x1200 image (scaled down to at most 0.1 MP)."
    assert result.scaled_from == (1600, 1200) and decode_image(data).scaled_from is None
    reference = cv2.resize(pixels, (400, 300), interpolation=cv2.INTER_AREA).astype(int)
    assert np.abs(result.pixels.astype(int) - reference).mean() < 2


def test_fit_uses_the_jpeg_decoders_reduced_scale(monkeypatch: pytest.MonkeyPatch) -> None:
    """A JPEG four times too big on each side is decoded at a quarter scale: the full-size pixels
    are never made (Pillow's draft mode)."""
    data = _encode(Image.fromarray(_smooth(1600, 1200)), "JPEG", quality=95)
    loaded_sizes: list[tuple[int, int]] = []
    real_load = ImageFile.ImageFile.load

    def spy(self):
        loaded_sizes.append(self.size)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    assert decode_image(data, fit=400 * 300).pixels.shape == (300, 400, 3)
    assert loaded_sizes and max(w * h for w, h in loaded_sizes) == 400 * 300


def test_fit_keeps_exif_orientation_and_names_the_displayed_size() -> None:
    data, _ = _exif_rotated_jpeg()  # stored 64x32, displayed 32x64
    result = decode_image(data, fit=16 * 32, min_side=8)
    assert result.pixels.shape == (32, 16, 3)
    np.testing.assert_allclose(result.pixels[4, 8], RED, atol=12)
    np.testing.assert_allclose(result.pixels[28, 8], BLUE, atol=12)
    assert "copy of the 32x64 image" in result.notes[-1] and result.scaled_from == (32, 64)
    assert "EXIF orientation applied (rotated 90°)" in result.notes


def test_fit_on_palette_and_array_sources_and_no_op_when_small() -> None:
    palette = Image.fromarray(_smooth(200, 100)).convert("P", palette=Image.Palette.ADAPTIVE)
    result = decode_image(_encode(palette, "PNG"), fit=100 * 50)
    assert result.pixels.shape == (50, 100, 3) and "copy of the 200x100" in result.notes[-1]
    result = decode_image(_smooth(200, 100), fit=100 * 50)
    assert result.pixels.shape == (50, 100, 3) and "copy of the 200x100" in result.notes[-1]
    small = decode_image(_smooth(200, 100), fit=200 * 100)
    assert small.pixels.shape == (100, 200, 3) and not small.notes
    with pytest.raises(ValueError, match="fit"):
        decode_image(_smooth(200, 100), fit=0)
