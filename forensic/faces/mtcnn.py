"""MTCNN's three stages over a batch of images, with every candidate's crop resampled at once.

facenet-pytorch's ``detect_face`` resamples each candidate box of the second and third stages
with its own ``interpolate`` call: hundreds of calls per image, which dominate its cost on a CPU
and turn into hundreds of kernel launches on a GPU. Its resampling is an area average
(``adaptive_avg_pool2d``), and on uint8 pixels an area average is a difference of an integral
image: this module computes all crops of a stage with one gather, exactly (integer sums), and
otherwise runs facenet-pytorch's own networks and box arithmetic in the same order, so the boxes
and probabilities are facenet-pytorch's to float rounding (tests/test_faces.py checks it).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torchvision.ops.boxes import batched_nms

__all__ = ["detect_faces"]

# Candidates per network call (facenet-pytorch's fixed_batch_process uses the same bound).
_CHUNK = 512


def detect_faces(
    images: torch.Tensor, *, pnet, rnet, onet, thresholds, factor: float, min_face_size: int
) -> list[np.ndarray]:
    """Faces in a batch of equal-size images.

    Args:
        images: (B, H, W, 3) uint8 RGB on the networks' device.
        pnet, rnet, onet: facenet-pytorch's MTCNN networks.
        thresholds: the three stages' probability thresholds.
        factor: the image pyramid's scale step.
        min_face_size: the smallest face searched for, in pixels.

    Returns:
        Per image, an (n, 5) array of boxes (x0, y0, x1, y1, probability).
    """
    from facenet_pytorch.models.utils.detect_face import bbreg, batched_nms_numpy, generateBoundingBox, pad, rerec

    batch = images.shape[0]
    h, w = images.shape[1:3]
    dtype = next(pnet.parameters()).dtype
    integral = _integral(images)

    # First stage: the proposal network over the image pyramid (each level an area resize, read
    # off the integral image: the same bins as facenet-pytorch's interpolate(mode="area")).
    scale = 12.0 / min_face_size
    side = min(h, w) * scale
    found, found_inds = [], []
    while side >= 12:
        data = _area_means(integral, int(h * scale + 1), int(w * scale + 1)).to(dtype)
        reg, probs = pnet((data - 127.5) * 0.0078125)
        boxes, inds = generateBoundingBox(reg, probs[:, 1], scale, thresholds[0])
        pick = batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.5)
        found.append(boxes[pick])
        found_inds.append(inds[pick])
        scale *= factor
        side *= factor
    boxes = torch.cat(found) if found else torch.zeros(0, 9, device=images.device)
    inds = torch.cat(found_inds) if found_inds else torch.zeros(0, dtype=torch.long, device=images.device)
    pick = batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
    boxes, inds = boxes[pick], inds[pick]
    regw, regh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    boxes = torch.stack(
        [boxes[:, 0] + boxes[:, 5] * regw, boxes[:, 1] + boxes[:, 6] * regh,
         boxes[:, 2] + boxes[:, 7] * regw, boxes[:, 3] + boxes[:, 8] * regh, boxes[:, 4]]
    ).permute(1, 0)
    boxes = rerec(boxes)

    # Second stage: the refinement network on 24x24 crops.
    if len(boxes):
        boxes, inds, crops = _crops(integral, boxes, inds, w, h, 24, pad)
        reg, prob = _chunked(rnet, crops)
        score = prob[:, 1]
        keep = score > thresholds[1]
        boxes = torch.cat((boxes[keep, :4], score[keep].unsqueeze(1)), dim=1)
        inds, reg = inds[keep], reg[keep]
        pick = batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
        boxes, inds, reg = boxes[pick], inds[pick], reg[pick]
        boxes = rerec(bbreg(boxes, reg))

    # Third stage: the output network on 48x48 crops.
    if len(boxes):
        boxes, inds, crops = _crops(integral, boxes, inds, w, h, 48, pad)
        reg, _, prob = _chunked(onet, crops)
        score = prob[:, 1]
        keep = score > thresholds[2]
        boxes = torch.cat((boxes[keep, :4], score[keep].unsqueeze(1)), dim=1)
        inds, reg = inds[keep], reg[keep]
        boxes = bbreg(boxes, reg)
        pick = batched_nms_numpy(boxes[:, :4], boxes[:, 4], inds, 0.7, "Min")
        boxes, inds = boxes[pick], inds[pick]

    boxes_np = boxes.cpu().numpy()
    inds_np = inds.cpu().numpy()
    return [boxes_np[inds_np == b].reshape(-1, 5).astype(np.float64) for b in range(batch)]


def _integral(images: torch.Tensor) -> torch.Tensor:
    """(B, H + 1, W + 1, 3) summed-area table of uint8 (B, H, W, 3) images (int32 while it cannot overflow)."""
    b, h, w, c = images.shape
    exact32 = 255 * h * w < 2**31
    if images.device.type == "cpu" and exact32:  # OpenCV's integral is several times faster than two cumsums
        return torch.from_numpy(np.stack([cv2.integral(np.ascontiguousarray(im), sdepth=cv2.CV_32S) for im in images.numpy()]))
    dtype = torch.int32 if exact32 else torch.int64
    table = torch.zeros(b, h + 1, w + 1, c, dtype=dtype, device=images.device)
    table[:, 1:, 1:] = images.to(dtype).cumsum(1).cumsum(2)
    return table


def _bins(n: int, size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """adaptive_avg_pool2d's bins of ``n`` inputs into ``size`` outputs: [floor(i n / size), ceil((i + 1) n / size))."""
    i = torch.arange(size, device=device)
    return (i * n) // size, ((i + 1) * n + size - 1) // size


def _area_means(integral: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """The images resized to (out_h, out_w) by area averaging, (B, 3, out_h, out_w) float32."""
    h, w = integral.shape[1] - 1, integral.shape[2] - 1
    r0, r1 = _bins(h, out_h, integral.device)
    c0, c1 = _bins(w, out_w, integral.device)
    top, bottom = integral.index_select(1, r0), integral.index_select(1, r1)
    sums = bottom.index_select(2, c1) - top.index_select(2, c1) - bottom.index_select(2, c0) + top.index_select(2, c0)
    area = ((r1 - r0)[:, None] * (c1 - c0)[None, :])[None, :, :, None]
    return (sums.to(torch.float64) / area).to(torch.float32).permute(0, 3, 1, 2)


def _crops(integral: torch.Tensor, boxes: torch.Tensor, inds: torch.Tensor, w: int, h: int, size: int, pad) -> tuple:
    """Each box's pixels (clipped to the image, as facenet-pytorch's ``pad``), area-resampled to
    ``size`` x ``size``, as (K, 3, size, size) floats; boxes left empty by the clipping are dropped."""
    y, ey, x, ex = (torch.as_tensor(v, device=boxes.device, dtype=torch.long) for v in pad(boxes, w, h))
    y0, x0 = y - 1, x - 1
    hk, wk = ey - y0, ex - x0
    valid = (hk > 0) & (wk > 0)
    if not bool(valid.all()):
        boxes, inds, y0, x0, hk, wk = boxes[valid], inds[valid], y0[valid], x0[valid], hk[valid], wk[valid]
    i = torch.arange(size, device=boxes.device)
    # adaptive_avg_pool2d's bins: [floor(i * n / size), ceil((i + 1) * n / size))
    r0 = y0[:, None] + (i * hk[:, None]) // size
    r1 = y0[:, None] + ((i + 1) * hk[:, None] + size - 1) // size
    c0 = x0[:, None] + (i * wk[:, None]) // size
    c1 = x0[:, None] + ((i + 1) * wk[:, None] + size - 1) // size
    b = inds[:, None, None]
    sums = (
        integral[b, r1[:, :, None], c1[:, None, :]]
        - integral[b, r0[:, :, None], c1[:, None, :]]
        - integral[b, r1[:, :, None], c0[:, None, :]]
        + integral[b, r0[:, :, None], c0[:, None, :]]
    )  # (K, size, size, 3)
    area = (r1 - r0)[:, :, None] * (c1 - c0)[:, None, :]
    means = (sums.to(torch.float64) / area[..., None]).to(torch.float32).permute(0, 3, 1, 2)
    return boxes, inds, (means - 127.5) * 0.0078125


def _chunked(net, data: torch.Tensor) -> tuple[torch.Tensor, ...]:
    outs = [net(data[i : i + _CHUNK]) for i in range(0, len(data), _CHUNK)]
    return tuple(torch.cat(parts) for parts in zip(*outs))
