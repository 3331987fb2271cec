"""Look closely (issue 24): crops of the clean and degraded image at the same place, magnified without
smoothing, their amplified difference, and the map difference (degraded minus clean) with its scale."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from forensic import viz
from forensic.degrade import degrade_result
from forensic.viz.closeup import GRID, VIEW
from webapp import closeup as page_closeup
from webapp.lab import LabSettings


# ------------------------------------------------------------------------------ crop geometry
@pytest.mark.parametrize("centre, expected", [
    ((0, 0), (0, 0, 96, 96)),                  # top-left corner: moved inside
    ((-50, 9999), (0, 404, 96, 500)),          # outside the image: still inside it
    ((640, 500), (544, 404, 640, 500)),        # bottom-right corner
    ((320, 250), (272, 200, 368, 296)),        # the centre, on the 8-pixel grid
])
def test_a_crop_stays_inside_the_image_at_its_edges(centre, expected):
    assert viz.crop_box((640, 500), centre, 96) == expected


def test_a_crop_starts_on_the_jpeg_grid_nearest_to_centring_it():
    for cx in range(48, 600, 7):
        x0, _, x1, _ = viz.crop_box((640, 500), (cx, 250), 96)
        assert x0 % GRID == 0 and x1 - x0 == 96
        assert abs((x0 + x1) / 2 - cx) <= GRID / 2


@pytest.mark.parametrize("size, side, shape", [((101, 37), 96, (96, 37)), ((37, 101), 96, (37, 96)), ((5, 3), 384, (5, 3)),
                                               ((97, 97), 96, (96, 96))])
def test_an_odd_or_small_image_gives_what_it_has(size, side, shape):
    x0, y0, x1, y1 = viz.crop_box(size, (size[0] / 2, size[1] / 2), side)
    assert (x1 - x0, y1 - y0) == shape and 0 <= x0 and x1 <= size[0] and 0 <= y0 and y1 <= size[1]


def test_a_crop_of_an_empty_image_or_side_is_refused():
    with pytest.raises(ValueError, match="empty"):
        viz.crop_box((0, 10), (0, 0), 8)
    with pytest.raises(ValueError, match="at least 1"):
        viz.crop_box((10, 10), (0, 0), 0)


# ------------------------------------------------------------------------------ magnification and difference
@pytest.mark.parametrize("factor", [1, 2, 4])
def test_magnification_repeats_each_pixel_into_a_solid_square(factor, rng):
    a = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    m = viz.magnify(a, factor)
    assert m.shape == (5 * factor, 7 * factor, 3) and m.dtype == np.uint8
    blocks = m.reshape(5, factor, 7, factor, 3)
    assert np.array_equal(blocks, np.broadcast_to(a[:, None, :, None, :], blocks.shape))


@pytest.mark.parametrize("factor", [0, 1.5, -2])
def test_a_magnification_that_is_not_a_whole_number_is_refused(factor):
    with pytest.raises(ValueError, match="whole number"):
        viz.magnify(np.zeros((2, 2, 3), np.uint8), factor)


def test_the_difference_is_grey_for_no_change_and_amplified_by_its_gain():
    clean = np.full((1, 5, 3), 100, np.uint8)
    degraded = np.array([[[100] * 3, [103] * 3, [90] * 3, [150] * 3, [0] * 3]], np.uint8)
    d = viz.difference_image(clean, degraded, gain=8)
    assert d[0, :, 0].tolist() == [128, 128 + 8 * 3, 128 - 8 * 10, 255, 0]  # clipped at both ends
    assert viz.difference_image(clean, degraded, gain=2)[0, 1, 0] == 128 + 2 * 3
    with pytest.raises(ValueError, match="differ in size"):
        viz.difference_image(clean, degraded[:, :3])


def test_the_gain_is_the_largest_that_keeps_the_differences_readable():
    clean = np.full((10, 10, 3), 100, np.uint8)
    assert viz.difference_gain(clean, clean) == 32  # nothing changed: the most sensitive
    assert viz.difference_gain(clean, clean + 30) == 2  # 2 x 30 = 60 fits in 100 levels of grey, 4 x 30 does not
    assert viz.difference_gain(clean, clean + 3) == 32 and viz.difference_gain(clean, clean + 12) == 8
    assert viz.difference_gain(clean, clean + 150) == 1  # saturates anyway: the smallest gain
    spots = clean.copy()
    spots[0, 0] = 255  # one outlier in 100 pixels: above the 99th percentile, it does not set the gain
    assert viz.difference_gain(clean, spots) == 32
    c = viz.closeup(clean, clean + 12, (5, 5), gain=None)
    assert c.gain == 8 and np.all(c.difference == 128 + 8 * 12)


@pytest.mark.parametrize("factor", [1, 2, 4])
def test_a_closeup_is_the_same_place_of_both_images_and_the_same_size(astronaut, factor):
    degraded = degrade_result(astronaut, "jpeg:quality=10", seed=0).image
    c = viz.closeup(astronaut, degraded, (256, 256), factor=factor)
    assert c.clean.shape == c.degraded.shape == c.difference.shape == (VIEW, VIEW, 3)
    x0, y0, x1, y1 = c.box
    assert (x1 - x0) * factor == VIEW and c.factor == factor and c.gain == viz.DIFF_GAIN
    assert np.array_equal(c.clean[::factor, ::factor], astronaut[y0:y1, x0:x1])
    assert np.array_equal(c.degraded[::factor, ::factor], degraded[y0:y1, x0:x1])
    expected = np.abs(degraded[y0:y1, x0:x1].astype(float) - astronaut[y0:y1, x0:x1]).mean()
    assert c.mean_abs == pytest.approx(expected, rel=1e-5)


def test_jpeg_blocks_at_quality_10_show_at_4x_as_edges_every_32_screen_pixels(astronaut):
    # the point of the panel: on a projector the 8 x 8 blocks are the strongest edges in the 4x crop
    degraded = degrade_result(astronaut, "jpeg:quality=10", seed=0).image
    c = viz.closeup(astronaut, degraded, (256, 300), factor=4)
    def block_edge_ratio(picture, step):
        # mean jump between neighbouring columns on block boundaries (every 8 image pixels) over that elsewhere
        cols = np.abs(np.diff(picture[:, ::step].astype(float).mean(axis=2), axis=1)).mean(axis=0)
        return cols[GRID - 1::GRID].mean() / np.delete(cols, np.s_[GRID - 1::GRID]).mean()

    # about 2.1 against 1.0: the crop starts on the grid, so whole blocks fill it (off the grid: no pattern)
    assert block_edge_ratio(c.degraded[::4, :], 4) > 1.6 * block_edge_ratio(c.clean[::4, :], 4)
    # on screen the block edges fall every 32 pixels, and inside a magnified pixel nothing changes
    screen = np.abs(np.diff(c.degraded.astype(float).mean(axis=2), axis=1)).mean(axis=0)
    assert screen[31::32].mean() > 1.5 * screen[3::4].mean()
    assert np.all(np.delete(screen, np.s_[3::4]) == 0)


def test_the_where_picture_outlines_the_crop_on_a_small_copy(astronaut):
    big = np.ascontiguousarray(np.tile(astronaut, (2, 2, 1)))  # 1024 px
    box = viz.crop_box((1024, 1024), (900, 100), 96)
    pic = viz.where_picture(big, box)
    s = viz.where_scale((1024, 1024))
    assert pic.shape == (480, 480, 3) and s == pytest.approx(480 / 1024)
    x0, y0 = round(box[0] * s), round(box[1] * s)
    assert tuple(pic[y0 + 5, x0 - 1]) == (255, 230, 0)  # the yellow outline on the crop's left edge


# ------------------------------------------------------------------------------ the map difference
def _blob(x: float, size: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    return np.exp(-((xx - x) ** 2 + (yy - size / 2) ** 2) / 40.0).astype(np.float32)


def test_a_map_that_moved_right_is_plus_on_the_right_and_minus_on_the_left():
    d = viz.map_difference(_blob(20), _blob(44))
    assert d.min() >= -1 and d.max() <= 1
    assert d[32, 44] > 0.9 and d[32, 20] < -0.9 and abs(d[32, 32]) < 0.1 and abs(d[0, 0]) < 1e-6
    pic = viz.map_difference_picture(np.full((64, 64, 3), 128, np.uint8), _blob(20), _blob(44))
    r, g, b = (int(v) for v in pic[32, 44])
    assert r > b + 40  # red: more attention on the degraded image
    r, g, b = (int(v) for v in pic[32, 20])
    assert b > r + 40  # blue: less
    r, g, b = (int(v) for v in pic[0, 0])
    assert max(r, g, b) - min(r, g, b) < 12  # no change: grey-white, no colour


def test_the_map_difference_picture_carries_its_scale_from_minus_one_to_plus_one():
    pic = viz.map_difference_picture(np.zeros((64, 200, 3), np.uint8), _blob(20)[:, :1].repeat(200, 1), _blob(20)[:, :1].repeat(200, 1))
    assert pic.shape[0] > 64 and pic.shape[1] == 200
    legend = pic[64:]
    coloured = [i for i in range(len(legend)) if abs(int(legend[i, 10, 2]) - int(legend[i, 10, 0])) > 60]
    assert coloured, "no colour bar under the picture"
    bar_row = legend[coloured[len(coloured) // 2]]
    left, mid, right = bar_row[10].astype(int), bar_row[100].astype(int), bar_row[-10].astype(int)
    assert left[2] > left[0] + 80 and right[0] > right[2] + 80  # blue at -1 on the left, red at +1 on the right
    assert mid.min() > 220  # white (no change) in the middle
    plain = viz.map_difference_picture(np.zeros((64, 200, 3), np.uint8), _blob(20, 64)[:, :1].repeat(200, 1),
                                       _blob(20, 64)[:, :1].repeat(200, 1), legend=False)
    assert plain.shape == (64, 200, 3)


def test_a_degraded_map_of_another_size_is_resized_to_the_clean_one():
    assert viz.map_difference(_blob(20, 64), _blob(10, 32)).shape == (64, 64)


def test_compare_draws_one_map_difference_per_explained_stream():
    def report(x):
        streams = {"texture": SimpleNamespace(cam_image=_blob(x)), "face": SimpleNamespace(cam_image=None)}
        return SimpleNamespace(streams=streams, image=np.zeros((64, 64, 3), np.uint8))

    pics = page_closeup.map_differences(report(20), report(44))
    assert pics["face"] is None and pics["fusion"] is None
    assert pics["texture"].shape[1] == 64 and pics["texture"][32, 44, 0] > pics["texture"][32, 44, 2]
    from webapp.figures import diverging_scale_html

    scale = diverging_scale_html()
    assert "−1 less" in scale and "+1 more" in scale and "degraded map minus the clean map" in scale


# ------------------------------------------------------------------------------ the app's panel (no detector needed)
@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    from skimage import data

    big = Image.fromarray(np.ascontiguousarray(data.astronaut())).resize((1024, 1024), Image.Resampling.BICUBIC)
    path = tmp_path_factory.mktemp("closeup") / "astronaut_1024.png"
    big.save(path)
    return str(path)


def test_look_closely_states_the_crop_the_zoom_and_the_gain(photo):
    view = page_closeup.look_closely(photo, LabSettings(jpeg_quality=10), "centre", 4, gain=8)
    assert view.closeup_clean.shape == view.closeup_degraded.shape == view.closeup_diff.shape == (VIEW, VIEW, 3)
    assert "96 x 96 pixel" in view.closeup_caption and "12 x 12 JPEG blocks" in view.closeup_caption
    assert "the centre" in view.closeup_caption and "1024 x 1024" in view.closeup_caption
    assert "×8" in view.closeup_title_diff and "grey = no change" in view.closeup_title_diff
    assert "128 + 8 × (degraded − clean)" in view.closeup_note and "16 grey levels or more is white or black" in view.closeup_note
    assert "chosen for this crop" not in view.closeup_note
    auto = page_closeup.look_closely(photo, LabSettings(jpeg_quality=10), "centre", 4)  # the app's: the crop's own gain
    c = viz.closeup(*_pair(photo, "jpeg:quality=10"), (512, 512), factor=4, gain=None)
    assert f"**Difference ×{c.gain}**" in auto.closeup_title_diff and f"128 + {c.gain} ×" in auto.closeup_note
    assert "chosen for this crop" in auto.closeup_note and np.array_equal(auto.closeup_diff, c.difference)
    assert "4 x 4 square" in view.closeup_title_clean and "jpeg:quality=10" in view.closeup_title_degraded
    assert view.closeup_where_pic.shape == (480, 480, 3)
    one = page_closeup.look_closely(photo, LabSettings(jpeg_quality=10), "centre", 1)
    assert "384 x 384 pixel" in one.closeup_caption and "100 %" in one.closeup_title_clean


def _pair(path, spec):
    clean = np.asarray(Image.open(path).convert("RGB"))
    return clean, degrade_result(clean, spec, seed=0).image


def test_look_closely_is_fast_on_a_1024_pixel_photo(photo):
    lab = LabSettings(jpeg_quality=10)
    page_closeup.look_closely(photo, lab)  # the first call decodes the upload (cached, as for the preview)
    took = min(_timed(lambda: page_closeup.look_closely(photo, lab, "centre", 4)) for _ in range(3))
    assert took < 0.5


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def test_a_clicked_point_is_mapped_back_to_the_image_and_looked_at(photo):
    point = page_closeup.clicked_point(photo, [470, 10])  # near the small picture's top-right corner
    assert point == pytest.approx([470 * 1024 / 480, 10 * 1024 / 480])
    view = page_closeup.look_closely(photo, LabSettings(jpeg_quality=30), "a point I click", 2, point)
    assert "pixels 832-1023 across, 0-191 down" in view.closeup_caption and "the point you clicked" in view.closeup_caption
    waiting = page_closeup.look_closely(photo, LabSettings(jpeg_quality=30), "a point I click", 2, None)
    assert "click the small picture" in waiting.closeup_caption
    assert page_closeup.clicked_point(None, [1, 2]) is None and page_closeup.clicked_point(photo, None) is None


def test_look_closely_without_an_image_or_a_degradation_says_so(photo, tmp_path):
    assert "Upload an image" in page_closeup.look_closely(None, LabSettings()).closeup_caption
    same = page_closeup.look_closely(photo, LabSettings())
    assert "applies nothing (= the clean upload)" in same.closeup_title_degraded
    assert np.all(same.closeup_diff == 128) and "Mean difference over the crop: 0.0 grey levels" in same.closeup_note
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    assert "Nothing to look at" in page_closeup.look_closely(str(bad), LabSettings(jpeg_quality=10)).closeup_caption


def test_the_face_is_looked_at_where_it_was_found_and_its_absence_is_said(photo, tmp_path):
    view = page_closeup.look_closely(photo, LabSettings(jpeg_quality=10), "the face", 2)
    assert "at the detected face" in view.closeup_caption
    # the astronaut's face is in the upper middle of the photo (about x 360-540, y 120-330 at 1024 px)
    across, down = (view.closeup_caption.split("pixels ")[1].split(" of the")[0]).split(", ")
    x0, x1 = (int(v) for v in across.split(" ")[0].split("-"))
    y0, y1 = (int(v) for v in down.split(" ")[0].split("-"))
    assert x0 < 450 < x1 and y0 < 220 < y1
    cup = tmp_path / "flat.png"
    Image.fromarray(np.full((300, 400, 3), 90, np.uint8)).save(cup)
    none = page_closeup.look_closely(str(cup), LabSettings(jpeg_quality=10), "the face", 4)
    assert "the centre (no face was found)" in none.closeup_caption and "pixels 152-247 across, 104-199 down" in none.closeup_caption


def test_a_big_upload_is_looked_at_on_the_labs_copy_and_the_caption_says_so(tmp_path):
    big = tmp_path / "big.png"
    Image.fromarray(np.full((600, 800, 3), 120, np.uint8)).save(big)
    view = page_closeup.look_closely(str(big), LabSettings(jpeg_quality=50), "centre", 4, max_pixels=400 * 300)
    assert "of the 400 x 300 image the lab works on (the upload, 800 x 600, scaled down to fit the lab)" in view.closeup_caption
    same = page_closeup.look_closely(str(big), LabSettings(jpeg_quality=50), "centre", 4)
    assert "800 x 600 image the lab works on (yellow box" in same.closeup_caption
