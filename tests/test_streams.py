"""What each stream sees: native crop without resampling, face crop, whole-image resize; regions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forensic.faces import CropRegion, FaceBox, FaceResult
from forensic.presets import get_preset
from forensic.streams import prepare_input, to_tensor

CFG = get_preset("paper").config


def _face(mode, region, box=None, size=(512, 512)):
    return FaceResult(mode=mode, box=box, region=region, faces=(box,) if box else (), found_by="original", reason="test.", image_size=size)


def test_texture_is_a_native_centre_crop(astronaut):
    inp = prepare_input(astronaut, CFG.stream("texture"))
    assert inp.kind == "center-crop" and inp.pixels.shape == (252, 252, 3)
    assert np.array_equal(inp.pixels, astronaut[130:382, 130:382])  # pure slicing, no interpolation
    assert (inp.region.x0, inp.region.y0, inp.region.x1, inp.region.y1) == (130, 130, 382, 382)


def test_small_images_are_upscaled_before_the_crop():
    img = np.random.default_rng(0).integers(0, 255, (100, 200, 3), dtype=np.uint8)
    inp = prepare_input(img, CFG.stream("texture"))
    assert inp.pixels.shape == (252, 252, 3) and "upscaled" in inp.note
    r = inp.region
    assert r.y0 == pytest.approx(0) and r.y1 == pytest.approx(100)  # the whole short side
    assert r.width == pytest.approx(100, abs=0.5)


def test_face_crop_uses_the_region_resized_to_256_then_the_centre_crop(astronaut):
    region = CropRegion(150.0, 50.0, 300.0, 200.0)
    face = _face("crop", region, FaceBox(180, 62, 268, 172, 0.99))
    inp = prepare_input(astronaut, CFG.stream("face"), face=face)
    assert inp.kind == "face-crop" and inp.pixels.shape == (252, 252, 3)
    full = region.extract(astronaut, size=256, interpolation="area")
    assert np.array_equal(inp.pixels, full[2:254, 2:254])
    side = 150 / 256
    assert inp.region.x0 == pytest.approx(150 + 2 * side) and inp.region.x1 == pytest.approx(150 + 254 * side)


@pytest.mark.parametrize("mode", ["small-face", "no-face"])
def test_face_fallback_sees_the_texture_crop_and_says_so(astronaut, mode):
    face = _face(mode, CropRegion(0, 0, 512, 512))
    inp = prepare_input(astronaut, CFG.stream("face"), face=face)
    texture = prepare_input(astronaut, CFG.stream("texture"))
    assert inp.kind == "face-fallback" and np.array_equal(inp.pixels, texture.pixels)
    assert "test." in inp.note and "centre crop" in inp.note


def test_fusion_resizes_the_whole_image(landscape):
    inp = prepare_input(landscape, CFG.stream("fusion"))
    assert inp.kind == "whole-image" and inp.pixels.shape == (224, 224, 3)
    assert (inp.region.x1, inp.region.y1) == (600, 400)
    # a uniform image stays uniform: no shift or border from the resize
    flat = np.full((500, 300, 3), 77, np.uint8)
    assert np.all(prepare_input(flat, CFG.stream("fusion")).pixels == 77)


def test_face_stream_requires_the_face_analysis(astronaut):
    with pytest.raises(ValueError, match="FaceResult"):
        prepare_input(astronaut, CFG.stream("face"))


def test_to_tensor_normalises_with_the_stream_statistics():
    px = np.zeros((252, 252, 3), np.uint8)
    px[..., 0] = 255
    x = to_tensor([px, px], CFG.stream("texture"))
    assert x.shape == (2, 3, 252, 252) and x.dtype == torch.float32
    assert x[0, 0, 0, 0].item() == pytest.approx((1 - 0.485) / 0.229, rel=1e-5)
    assert x[0, 1, 0, 0].item() == pytest.approx((0 - 0.456) / 0.224, rel=1e-5)
