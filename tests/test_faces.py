"""Tests for forensic.faces: MTCNN detection, retries, selection policy, crop geometry."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from forensic.faces import (
    RETRY_CHAIN,
    CropRegion,
    decide,
    FaceBox,
    FaceDetector,
    FaceResult,
    get_default_detector,
    select_face,
    square_region,
)

# MTCNN's box for the astronaut's face on the full 512x512 image.
ASTRONAUT_BOX = np.array([181.05, 62.16, 267.75, 172.05])
# A 256x256 face-centred crop of the astronaut, like the paper's training images.
FACE_CROP_X0 = 96
FACE_CROP_BOX = ASTRONAUT_BOX - np.array([FACE_CROP_X0, 0, FACE_CROP_X0, 0])


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


@pytest.fixture(scope="module")
def face_crop(astronaut: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(astronaut[0:256, FACE_CROP_X0 : FACE_CROP_X0 + 256])


def _coords(box: FaceBox) -> np.ndarray:
    return np.array([box.x0, box.y0, box.x1, box.y1])


def _iou(a: FaceBox, b: FaceBox) -> float:
    ix = max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0))
    iy = max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    inter = ix * iy
    return inter / (a.area + b.area - inter)


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    assert ok
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _assert_square_crop_of(region: CropRegion, box: FaceBox, scale: float = 1.3) -> None:
    assert region.is_integer
    assert region.width == region.height
    assert abs(region.width - scale * max(box.width, box.height)) <= 1.0
    assert region.x0 <= box.x0 and region.y0 <= box.y0
    assert region.x1 >= box.x1 and region.y1 >= box.y1
    # centred on the box (up to the snapping to the pixel grid)
    assert abs((region.x0 + region.x1) / 2 - box.center[0]) <= 1.0
    assert abs((region.y0 + region.y1) / 2 - box.center[1]) <= 1.0


# ----------------------------------------------------------------------------------------------
# Detection on real photos
# ----------------------------------------------------------------------------------------------


def test_astronaut_face_is_found_and_is_a_small_face(detector, astronaut):
    result = detector.analyze(astronaut)
    assert result.box is not None
    np.testing.assert_allclose(_coords(result.box), ASTRONAUT_BOX, atol=3.0)
    assert result.box.score > 0.99
    assert result.found_by == "original"
    assert len(result.faces) == 1
    # The face box covers ~3.6% of the 512x512 portrait: under the paper's 1/9 rule the face
    # stream sees the whole image.
    assert result.face_fraction == pytest.approx(0.036, abs=0.005)
    assert result.mode == "small-face"
    assert result.region == CropRegion(0.0, 0.0, 512.0, 512.0)
    assert "4%" in result.reason and "1/9" in result.reason
    assert result.image_size == (512, 512)


def test_square_region_around_astronaut_face(detector, astronaut):
    box = detector.detect(astronaut)[0]
    region = square_region(box, scale=1.3, image_size=(512, 512))
    _assert_square_crop_of(region, box)
    crop = region.extract(astronaut)
    assert crop.shape == (256, 256, 3) and crop.dtype == np.uint8


def test_face_centred_image_gives_a_crop(detector, face_crop):
    result = detector.analyze(face_crop)
    assert result.mode == "crop"
    assert result.found_by == "original"
    np.testing.assert_allclose(_coords(result.box), FACE_CROP_BOX, atol=4.0)
    assert result.face_fraction > 1 / 9
    _assert_square_crop_of(result.region, result.box)
    assert "1.3x square crop" in result.reason
    crop = result.region.extract(face_crop)
    assert crop.shape == (256, 256, 3) and crop.dtype == np.uint8
    # The region lies inside the image: the crop is exactly the seed's slice + INTER_AREA resize.
    r = result.region
    direct = cv2.resize(
        face_crop[int(r.y0) : int(r.y1), int(r.x0) : int(r.x1)],
        (256, 256),
        interpolation=cv2.INTER_AREA,
    )
    assert np.abs(crop.astype(int) - direct.astype(int)).mean() < 0.5


@pytest.mark.parametrize(
    "name, degrade",
    [
        ("jpeg-q10", lambda im: _jpeg(im, 10)),
        ("gblur-3", lambda im: cv2.GaussianBlur(im, (0, 0), 3)),
    ],
)
def test_face_survives_degradation(detector, face_crop, name, degrade, record_property):
    clean = detector.analyze(face_crop)
    result = detector.analyze(degrade(face_crop))
    record_property("found_by", result.found_by)
    assert result.mode == "crop", result.reason
    assert result.found_by in ("original",) + RETRY_CHAIN
    assert _iou(result.box, clean.box) > 0.8


@pytest.mark.parametrize(
    "name, degrade, rescued_by",
    [
        # heavy blur: MTCNN misses it; the upscaled + gamma + unsharp copy finds it
        ("gblur-8", lambda im: cv2.GaussianBlur(im, (0, 0), 8), "upscale-2x"),
        # contrast squeezed to 10%: CLAHE + unsharp restores it
        ("contrast-0.1", lambda im: (128 + (im - 128.0) * 0.1).astype(np.uint8), "clahe-sharpen"),
        # face cut by the left edge: only the padded copy sees a whole face
        ("edge-cut", lambda im: np.ascontiguousarray(im[:, 130:]), "pad"),
    ],
)
def test_retries_rescue_faces_the_plain_detector_misses(
    detector, face_crop, name, degrade, rescued_by
):
    image = degrade(face_crop)
    assert detector.detect_enhanced(image, enhancement="original") == ()
    assert detector.detect_enhanced(image, enhancement=rescued_by) != ()  # this copy alone rescues it
    result = detector.analyze(image)
    assert result.mode == "crop", result.reason
    # the retries run on a small copy and the first copy in the chain that finds the face wins
    assert result.found_by in RETRY_CHAIN
    assert "copy" in result.reason
    # Boxes are mapped back to the coordinates of the image that was passed in.
    shift = 130 if name == "edge-cut" else 0
    expected = FaceBox(*(FACE_CROP_BOX - np.array([shift, 0, shift, 0])), score=1.0)
    assert _iou(result.box, expected) > 0.6


def test_no_retries_means_no_rescue(face_crop):
    plain = FaceDetector(retries=False)
    result = plain.analyze(cv2.GaussianBlur(face_crop, (0, 0), 8))
    assert result.mode == "no-face"
    assert "also tried" not in result.reason


@pytest.mark.parametrize("enhancement", RETRY_CHAIN)
def test_every_enhanced_copy_maps_boxes_back(detector, face_crop, enhancement):
    clean = detector.detect(face_crop)[0]
    faces = detector.detect_enhanced(face_crop, enhancement=enhancement)
    assert len(faces) == 1
    assert _iou(faces[0], clean) > 0.8
    assert np.abs(_coords(faces[0]) - _coords(clean)).max() < 8


def test_unknown_enhancement_lists_valid_ones(detector, face_crop):
    with pytest.raises(ValueError, match="upscale-2x"):
        detector.detect_enhanced(face_crop, enhancement="gfpgan")


def test_large_image_runs_on_a_downscaled_copy(detector, astronaut, monkeypatch):
    big = cv2.resize(astronaut, (1536, 1536), interpolation=cv2.INTER_CUBIC)
    big = np.ascontiguousarray(np.pad(big, ((0, 0), (0, 512), (0, 0))))  # 1536 x 2048
    seen: list[tuple[int, ...]] = []
    original = detector._mtcnn_detect

    def spy(batch, *args, **kwargs):
        seen.append(batch.shape[1:])
        return original(batch, *args, **kwargs)

    monkeypatch.setattr(detector, "_mtcnn_detect", spy)
    faces = detector.detect(big)
    assert seen and max(seen[0][:2]) <= 1024
    assert len(faces) == 1
    np.testing.assert_allclose(_coords(faces[0]), 3 * ASTRONAUT_BOX, atol=9.0)


def test_landscape_has_no_face(detector, landscape):
    result = detector.analyze(landscape)
    assert result.mode == "no-face"
    assert result.box is None and result.faces == () and result.found_by is None
    assert result.region == CropRegion(0.0, 0.0, 600.0, 400.0)
    assert result.image_size == (600, 400)
    assert result.reason.startswith("No face found (also tried denoised")
    assert isinstance(result, FaceResult)
    with pytest.raises(AttributeError):
        result.mode = "crop"  # type: ignore[misc]  # frozen


def test_small_face_in_big_canvas(detector, astronaut):
    canvas = np.full((1024, 1024, 3), 90, dtype=np.uint8)
    canvas[300:556, 600:856] = astronaut[0:256, FACE_CROP_X0 : FACE_CROP_X0 + 256]
    result = detector.analyze(canvas)
    assert result.mode == "small-face"
    assert result.region == CropRegion(0.0, 0.0, 1024.0, 1024.0)
    expected = FACE_CROP_BOX + np.array([600, 300, 600, 300])
    np.testing.assert_allclose(_coords(result.box), expected, atol=5.0)


def test_odd_inputs_do_not_crash(detector, astronaut):
    tiny = detector.analyze(np.zeros((8, 8, 3), np.uint8))
    assert tiny.mode == "no-face" and "too small" in tiny.reason
    assert detector.analyze(np.zeros((0, 0, 3), np.uint8)).mode == "no-face"
    assert detector.analyze(np.full((15, 3000, 3), 100, np.uint8)).mode == "no-face"
    # grayscale content (2-D, or replicated to 3 channels) still finds the face
    gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    for image in (gray, np.repeat(gray[:, :, None], 3, axis=2)):
        faces = detector.detect(image)
        assert len(faces) == 1
        np.testing.assert_allclose(_coords(faces[0]), ASTRONAUT_BOX, atol=6.0)
    with pytest.raises(TypeError, match="uint8"):
        detector.analyze(astronaut.astype(np.float32) / 255)
    with pytest.raises(ValueError, match="HxWx3"):
        detector.analyze(np.zeros((10, 10, 2), np.uint8))


def test_to_dict_is_json(detector, face_crop):
    result = detector.analyze(face_crop)
    d = json.loads(json.dumps(result.to_dict()))
    assert d["mode"] == "crop" and d["found_by"] == "original"
    assert d["image_size"] == [256, 256]
    assert d["box"]["score"] == pytest.approx(result.box.score)
    assert d["region"] == {"x0": result.region.x0, "y0": result.region.y0,
                           "x1": result.region.x1, "y1": result.region.y1}
    assert len(d["faces"]) == 1 and 0.1 < d["face_fraction"] < 0.3


# ----------------------------------------------------------------------------------------------
# Policy (pure, synthetic boxes)
# ----------------------------------------------------------------------------------------------

SIZE = (400, 300)  # image centre (200, 150)


def _box(x0, y0, x1, y1, score):
    return FaceBox(float(x0), float(y0), float(x1), float(y1), float(score))


def test_select_face_empty_and_single():
    assert select_face((), SIZE) is None
    only = _box(0, 0, 10, 10, 0.95)
    assert select_face([only], SIZE) is only


def test_select_face_top_score_wins_when_clear():
    off_centre = _box(0, 0, 40, 40, 0.99)
    central = _box(150, 100, 250, 200, 0.96)  # contains the centre, bigger, but 0.03 lower
    assert select_face([central, off_centre], SIZE) is off_centre
    # a gap of exactly 0.02 still counts as clear (seed: diff >= 0.02)
    assert select_face([central, _box(0, 0, 40, 40, 0.98)], SIZE).score == 0.98


def test_select_face_tie_prefers_largest_box_containing_centre():
    top = _box(0, 0, 40, 40, 0.999)
    small_central = _box(180, 130, 220, 170, 0.990)
    # lower score, but contains the centre and is the largest such box
    large_central = _box(120, 80, 280, 220, 0.95)
    assert select_face([top, small_central, large_central], SIZE) is large_central
    assert select_face([top, small_central], SIZE) is small_central


def test_select_face_tie_without_centre_takes_nearest():
    far = _box(0, 0, 40, 40, 0.999)
    near = _box(230, 160, 260, 190, 0.995)  # centre (245, 175): 51 px from the image centre
    assert select_face([far, near], SIZE) is near


def test_small_face_threshold_is_one_ninth():
    size = (300, 300)  # area 90000; 1/9 = 10000 = 100x100
    assert decide((_box(100, 100, 200, 200, 0.99),), "original", size).mode == "crop"
    small = decide((_box(100, 100, 199, 200, 0.99),), "original", size)
    assert small.mode == "small-face" and small.region == CropRegion(0, 0, 300, 300)


def test_square_region_rejects_box_outside_image():
    with pytest.raises(ValueError, match="outside"):
        square_region(_box(500, 500, 600, 600, 0.9), scale=1.3, image_size=(400, 300))


# ----------------------------------------------------------------------------------------------
# Mapping between crop and image
# ----------------------------------------------------------------------------------------------


def test_to_image_and_from_image_are_inverse(rng):
    region = CropRegion(-37.0, 12.5, 163.0, 212.5)
    u, v = rng.uniform(-10, 300, size=(2, 50))
    x, y = region.to_image(u, v, 256)
    u2, v2 = region.from_image(x, y, 256)
    np.testing.assert_allclose(u2, u, atol=1e-9)
    np.testing.assert_allclose(v2, v, atol=1e-9)
    # the crop's outer edges are the region's edges (pixel-index coordinates: edge = -0.5)
    assert region.to_image(-0.5, -0.5, 256) == pytest.approx((region.x0 - 0.5, region.y0 - 0.5))
    assert region.to_image(255.5, 255.5, 256) == pytest.approx((region.x1 - 0.5, region.y1 - 0.5))


def test_extract_pads_with_zeros_outside_image(astronaut):
    region = CropRegion(-50.0, -30.0, 150.0, 170.0)
    same = region.extract(astronaut, size=200)  # 1:1, no resampling
    assert not same[:30].any() and not same[:, :50].any()
    np.testing.assert_array_equal(same[30:, 50:], astronaut[:170, :150])
    half = region.extract(astronaut, size=100)  # 2x area downscale
    assert not half[:15].any() and not half[:, :25].any()
    assert half[20:, 30:].mean() > 20


def test_extract_fully_outside_is_black(astronaut):
    crop = CropRegion(600.0, 600.0, 700.0, 700.0).extract(astronaut, size=64)
    assert crop.shape == (64, 64, 3) and not crop.any()


@pytest.mark.parametrize(
    "region",
    [
        CropRegion(100.0, 40.0, 246.0, 186.0),  # on the grid, upscaled to 256
        CropRegion(-20.0, 300.0, 580.0, 900.0),  # on the grid, downscaled, partly outside
        CropRegion(100.3, 40.6, 246.3, 186.6),  # off the grid: affine warp
        CropRegion(-20.25, 300.5, 579.75, 900.5),  # off the grid, downscaled (area prefilter)
    ],
)
def test_extract_agrees_with_to_image(region):
    image = np.zeros((1000, 700, 3), np.uint8)
    spots = [(150, 90), (200, 160), (30, 520), (410, 700)]
    spots = [
        (x, y)
        for x, y in spots
        if region.x0 + 8 < x < region.x1 - 8 and region.y0 + 8 < y < region.y1 - 8
    ]
    assert spots
    for x, y in spots:
        cv2.circle(image, (x, y), 3, (255, 255, 255), -1)
    crop = region.extract(image, size=256, interpolation="area").astype(float)[..., 0]
    for x, y in spots:
        u, v = region.from_image(float(x), float(y), 256)
        iu, iv = int(round(u)), int(round(v))
        # intensity centroid of the spot in the crop, near where from_image says it is
        top, left = max(iv - 12, 0), max(iu - 12, 0)
        win = crop[top : iv + 13, left : iu + 13]
        yy, xx = np.mgrid[top : top + win.shape[0], left : left + win.shape[1]]
        cu, cv_ = (win * xx).sum() / win.sum(), (win * yy).sum() / win.sum()
        assert abs(cu - u) < 1.0 and abs(cv_ - v) < 1.0


def test_off_grid_extract_matches_on_grid_extract(astronaut):
    big = cv2.resize(astronaut, (1536, 1536), interpolation=cv2.INTER_CUBIC)
    on = CropRegion(400.0, 100.0, 1000.0, 700.0)
    off = CropRegion(400.0 + 1e-3, 100.0, 1000.0 + 1e-3, 700.0)
    assert on.is_integer and not off.is_integer
    diff = np.abs(on.extract(big).astype(int) - off.extract(big).astype(int))
    assert diff.mean() < 2.0


def test_extract_matches_direct_slice_and_resize(astronaut):
    region = CropRegion(160.0, 40.0, 300.0, 180.0)
    crop = region.extract(astronaut, size=256)
    direct = cv2.resize(astronaut[40:180, 160:300], (256, 256), interpolation=cv2.INTER_AREA)
    assert np.abs(crop.astype(int) - direct.astype(int)).mean() < 0.5
    linear = region.extract(astronaut, size=256, interpolation="linear")
    assert np.abs(linear.astype(int) - direct.astype(int)).mean() < 3.0
    with pytest.raises(ValueError, match="area"):
        region.extract(astronaut, interpolation="lanczos9")


def test_paste_map_hot_pixel_lands_where_to_image_says():
    region = CropRegion(181.0, 45.0, 327.0, 191.0)  # a 146 px face region in a 512x512 image
    for u, v in [(128, 128), (40, 200), (250, 10)]:
        heat = np.zeros((256, 256), np.float32)
        heat[v, u] = 1.0
        pasted = region.paste_map(heat, (512, 512))
        assert pasted.shape == (512, 512) and pasted.dtype == np.float32
        y, x = np.unravel_index(np.argmax(pasted), pasted.shape)
        ex, ey = region.to_image(u, v, 256)
        assert abs(x - ex) <= 1.5 and abs(y - ey) <= 1.5


def test_paste_map_token_grid_and_outside_zero():
    region = CropRegion(-40.0, 100.0, 320.0, 460.0)  # partly left of a 400x300 image
    grid = np.tile(np.arange(18, dtype=np.float32), (18, 1))  # value = token column
    pasted = region.paste_map(grid, (300, 400, 3))
    assert pasted.shape == (300, 400)
    assert not pasted[:100].any() and not pasted[:, 320:].any()
    # image column x lies in token column (x + 0.5 - x0) / 20 - 0.5 (bilinear, clamped at edges)
    for x in (0, 50, 150, 300):
        expected = np.clip((x + 0.5 + 40.0) / 20.0 - 0.5, 0, 17)
        assert pasted[200, x] == pytest.approx(expected, abs=1e-4)
    ones = region.paste_map(np.ones((18, 18)), (300, 400))
    assert ones[100:, :320].min() == 1.0 and ones.sum() == 200 * 320


def test_whole_image_region_maps_rectangles():
    region = CropRegion(0.0, 0.0, 600.0, 400.0)
    assert region.to_image(-0.5, -0.5, 256) == pytest.approx((-0.5, -0.5))
    pasted = region.paste_map(np.ones((16, 16)), (400, 600))
    assert pasted.min() == 1.0


# ----------------------------------------------------------------------------------------------
# Sharing
# ----------------------------------------------------------------------------------------------


def test_default_detector_is_shared_across_threads():
    with ThreadPoolExecutor(max_workers=8) as pool:
        detectors = list(pool.map(lambda _: get_default_detector(), range(16)))
    assert all(d is detectors[0] for d in detectors)
    assert isinstance(detectors[0], FaceDetector)


def test_mtcnn_is_created_once_under_concurrency():
    fresh = FaceDetector()
    barrier = threading.Barrier(4)

    def grab(_):
        barrier.wait()
        return fresh.mtcnn

    with ThreadPoolExecutor(max_workers=4) as pool:
        models = list(pool.map(grab, range(4)))
    assert all(m is models[0] for m in models)


# ----------------------------------------------------------------------------------------------
# Batches and the cost of the retries
# ----------------------------------------------------------------------------------------------


def test_a_batch_gives_what_each_image_gives_alone(detector, astronaut, face_crop, landscape):
    images = [astronaut, face_crop, landscape, np.ascontiguousarray(face_crop[:, ::-1]), cv2.GaussianBlur(face_crop, (0, 0), 8)]
    batched = detector.analyze_batch(images)
    for image, result in zip(images, batched):
        alone = detector.analyze(image)
        assert (result.mode, result.found_by, len(result.faces)) == (alone.mode, alone.found_by, len(alone.faces))
        if alone.box is not None:
            np.testing.assert_allclose(_coords(result.box), _coords(alone.box), atol=1.0)


def test_retries_cost_a_fraction_of_the_original_search(detector, landscape, monkeypatch):
    """A faceless image pays for the retries, but they run on a small copy looking only for faces
    large enough for a crop: MTCNN sees far fewer pixels than in the original search."""
    calls: list[tuple[int, int, int]] = []
    original = detector._mtcnn_detect

    def spy(batch, min_face_size):
        calls.append((batch.shape[0] * batch.shape[1] * batch.shape[2], min_face_size, batch.shape[0]))
        return original(batch, min_face_size)

    monkeypatch.setattr(detector, "_mtcnn_detect", spy)
    big = cv2.resize(landscape, (1024, 768), interpolation=cv2.INTER_CUBIC)
    result = detector.analyze(big)
    assert result.mode == "no-face" and "large enough for a crop" in result.reason
    (first_pixels, first_min, _), *retries = calls
    assert first_min == detector.min_face_size
    # an MTCNN pyramid costs about pixels / min_face_size^2: the retries together stay under a third
    cost = lambda pixels, min_face: pixels / min_face**2  # noqa: E731
    assert sum(cost(p, m) for p, m, _ in retries) < cost(first_pixels, first_min) / 3
    assert all(m > detector.min_face_size for _, m, _ in retries)


def test_retries_still_find_a_face_large_enough_for_a_crop_in_a_big_degraded_image(detector, face_crop):
    big = cv2.resize(face_crop, (900, 900), interpolation=cv2.INTER_CUBIC)
    flat = (128 + (big - 128.0) * 0.1).astype(np.uint8)  # contrast squeezed to 10%
    assert detector.detect_enhanced(flat, enhancement="original") == ()
    result = detector.analyze(flat)
    assert result.mode == "crop" and result.found_by in RETRY_CHAIN
    clean = detector.analyze(big)
    assert _iou(result.box, clean.box) > 0.6


@pytest.mark.parametrize("min_face", [20, 48])
def test_batched_mtcnn_equals_facenet_pytorchs(detector, astronaut, face_crop, landscape, min_face):
    """Our stages (all crops of a stage in one gather) give facenet-pytorch's boxes and probabilities."""
    import torch
    from facenet_pytorch.models.utils.detect_face import detect_face

    from forensic.faces.mtcnn import detect_faces

    m = detector.mtcnn
    rocket = cv2.resize(__import__("skimage.data", fromlist=["rocket"]).rocket(), (400, 300))
    for image in (astronaut, face_crop, landscape, rocket, cv2.GaussianBlur(astronaut, (0, 0), 3)):
        with torch.inference_mode():
            ours = detect_faces(
                torch.from_numpy(image[None]), pnet=m.pnet, rnet=m.rnet, onet=m.onet, thresholds=m.thresholds,
                factor=m.factor, min_face_size=min_face,
            )[0]
            theirs, _ = detect_face(image[None], min_face, m.pnet, m.rnet, m.onet, m.thresholds, m.factor, "cpu")
        theirs = np.asarray(theirs[0], dtype=np.float64).reshape(-1, 5)
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, atol=1e-2)
