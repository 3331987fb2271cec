"""Video: what a clip costs through ``Detector.analyze_video`` (issue 22).

    python bench/video.py                          # every part below, tiny-random and small, CPU
    python bench/video.py --part frames --preset tiny-random
    python bench/video.py --part decode --part rss

Parts:

- ``frames``: per-frame cost through the video path (``analyze_video`` on a clip: two decoding
  passes, faces and tracks, the frames batched through the streams) against the image path's
  per-image cost on the same frames (``analyze_many`` on the decoded arrays). Target <= 1.2x.
  The clip: 16 s of 640x360 at 10 fps, the astronaut's face moving over the coffee photo
  (libx264 veryfast, CRF 23, a keyframe every 2 s), sampled at 1 fps (16 frames).
- ``decode``: ``iter_frames`` over a 30 s 1280x720 clip at 30 fps (libx264 veryfast, CRF 23, a
  keyframe every 2 s, as phones and sites write them) sampled at 1 fps (30 frames). Target <= 5 s.
- ``rss``: peak resident memory of a fresh process that builds the detector and runs
  ``analyze_video`` with the default sampling (1 fps, at most 64 frames spread over the clip) on a
  10-minute 1920x1080 clip. The clip is written once to ``--cache`` (default /tmp/video-bench) at
  2 fps with libx264 ultrafast and a keyframe every 10 s (1,200 frames; real clips have more
  frames between the samples, which decoding skips by seeking to the keyframe before each one).
  Target <= 1.5 GB.
- ``gpu``: frames/s of the ``paper`` path on a GPU, when one is present.

Random weights time exactly like trained ones (``bench/_common.random_config``).
"""

from __future__ import annotations

import argparse
import fractions
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parent.parent

PARTS = ("frames", "decode", "rss", "gpu")


def scene(width: int, height: int):
    """``frame(t)``: the astronaut's face (40% of the height) gliding over the coffee photo, t in [0, 1]."""
    import cv2
    import numpy as np
    from skimage import data

    from forensic.images import load_image

    background = cv2.resize(data.coffee(), (width, height), interpolation=cv2.INTER_AREA)
    face = load_image(ROOT / "examples" / "astronaut.jpg")[0:260, 110:330]  # the head and shoulders
    side = int(height * 0.4)
    face = cv2.resize(face, (int(side * face.shape[1] / face.shape[0]), side), interpolation=cv2.INTER_AREA)
    fh, fw = face.shape[:2]

    def frame(t: float) -> np.ndarray:
        image = background.copy()
        x = int((width - fw) * (0.1 + 0.8 * t))
        y = int((height - fh) * (0.5 + 0.3 * np.sin(6.28 * t)))
        image[y : y + fh, x : x + fw] = face
        return image

    return frame


def write_clip(path: Path, *, width: int, height: int, seconds: float, fps: float, preset: str, gop_s: float) -> Path:
    """Encodes :func:`scene` frame by frame (bounded memory) with libx264 into ``path``; kept if already there."""
    if path.exists():
        return path
    import av

    frame_of = scene(width, height)
    total = int(round(seconds * fps))
    tmp = path.with_suffix(".part" + path.suffix)
    with av.open(str(tmp), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fractions.Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": preset, "crf": "23"}
        stream.codec_context.gop_size = max(1, int(round(gop_s * fps)))
        for i in range(total):
            picture = av.VideoFrame.from_ndarray(frame_of(i / max(total - 1, 1)), format="rgb24")
            picture.pts = i
            for packet in stream.encode(picture.reformat(format="yuv420p")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.rename(path)
    return path


def detector_for(preset: str):
    import torch

    from _common import random_config
    from forensic.model import ForensicModel
    from forensic.pipeline import Detector

    model = ForensicModel(random_config(preset), device="meta").to_empty(device="cpu")
    model.init_random_(seed=0)
    return Detector(model.to(torch.float32).eval(), weights="random")


def frames_part(preset: str, clip: Path, *, repeats: int) -> dict:
    """Per-frame seconds (wall and CPU): the video path vs the image path on the same decoded frames."""
    import torch

    from forensic.video import iter_frames

    detector = detector_for(preset)
    n = 16
    arrays = [f.image for f in iter_frames(clip, fps=1, max_frames=n)]
    decode = []
    image_s, video_s = [], []  # (wall, CPU) seconds per frame

    def timed(fn) -> tuple[float, float]:
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        return (time.perf_counter() - start) / len(arrays), (time.process_time() - start_cpu) / len(arrays)

    def image_path() -> None:
        for _, outcome in detector.analyze_many(arrays, batch_size=8):
            assert not isinstance(outcome, Exception), outcome

    def video_path() -> None:
        report = detector.analyze_video(clip, fps=1, max_frames=n, batch_size=8)
        assert len(report.frames) == len(arrays) and all(f.error is None for f in report.frames)

    timed(image_path), timed(video_path)  # warm-up: MTCNN, kernels, the allocator
    for _ in range(repeats):  # interleaved, so a busy spell on the shared CPU hits both
        image_s.append(timed(image_path))
        video_s.append(timed(video_path))
        decode.append(timed(lambda: list(iter_frames(clip, fps=1, max_frames=n)))[0])
    faces = timed(lambda: [detector.locate(arrays[i : i + 8]) for i in range(0, len(arrays), 8)])
    report = detector.analyze_video(clip, fps=1, max_frames=n)
    image, video = (statistics.median(t[0] for t in image_s), statistics.median(t[0] for t in video_s))
    image_cpu, video_cpu = (statistics.median(t[1] for t in image_s), statistics.median(t[1] for t in video_s))
    return {"preset": preset, "frames": len(arrays), "torch_threads": torch.get_num_threads(),
            "image_path_s_per_frame": image, "video_path_s_per_frame": video, "video_over_image": video / image,
            "image_path_cpu_s_per_frame": image_cpu, "video_path_cpu_s_per_frame": video_cpu,
            "video_over_image_cpu": video_cpu / image_cpu, "faces_alone_s_per_frame": faces[0],
            "one_decoding_pass_s_per_frame": statistics.median(decode),
            "main_track_frames": report.summary.frames_with_face, "repeats": repeats}


def decode_part(clip: Path, *, repeats: int = 3) -> dict:
    from forensic.video import iter_frames, probe

    info = probe(clip)
    times, cpu = [], []
    count = 0
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        with iter_frames(clip, fps=1) as stream:
            count = sum(1 for _ in stream)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {"clip": f"{info.width}x{info.height}, {info.duration_s:.0f} s at {info.fps:.0f} fps", "frames": count,
            "wall_s": statistics.median(times), "cpu_s": statistics.median(cpu), "runs": [round(t, 3) for t in times]}


def rss_inner(preset: str, clip: Path) -> dict:
    """In a fresh process: peak RSS after building the detector and one warm-up image, then after the clip."""
    import numpy as np

    from _common import peak_rss_gb

    detector = detector_for(preset)
    detector.analyze(np.zeros((1080, 1920, 3), np.uint8))
    before = peak_rss_gb()
    start = time.perf_counter()
    report = detector.analyze_video(clip)  # the default sampling: 1 fps, at most 64 frames
    seconds = time.perf_counter() - start
    return {"preset": preset, "frames": len(report.frames), "spread": report.sampling["spread"],
            "peak_rss_before_clip_gb": before, "peak_rss_gb": peak_rss_gb(), "seconds": seconds,
            "frames_with_face": report.summary.frames_with_face}


def rss_part(preset: str, clip: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--rss-inner", str(clip), "--preset", preset],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def gpu_part() -> dict:
    import torch

    if not torch.cuda.is_available():
        return {"gpu": "not measured: no device lent"}
    detector = detector_for("paper")
    detector.model.to("cuda", torch.bfloat16)
    clip = write_clip(Path("/tmp/video-bench/face_640x360_16s.mp4"), width=640, height=360, seconds=16, fps=10,
                      preset="veryfast", gop_s=2)
    detector.analyze_video(clip, fps=1, max_frames=16, batch_size=32)
    torch.cuda.synchronize()
    start = time.perf_counter()
    report = detector.analyze_video(clip, fps=10, max_frames=160, batch_size=32)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"gpu": torch.cuda.get_device_name(0), "frames": len(report.frames), "frames_per_s": len(report.frames) / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", action="append", choices=PARTS, help="parts to run (default: all)")
    parser.add_argument("--preset", action="append", help="presets for frames and rss (default: tiny-random, small)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per path (medians; default 3)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's, one per core)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/video-bench"), help="where the clips are written once")
    parser.add_argument("--rss-inner", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    presets = args.preset or ["tiny-random", "small"]
    if args.rss_inner:
        print(json.dumps(rss_inner(presets[0], args.rss_inner)))
        return
    import torch

    from _common import machine

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {machine()}")
    args.cache.mkdir(parents=True, exist_ok=True)
    parts = args.part or list(PARTS)
    if "frames" in parts:
        clip = write_clip(args.cache / "face_640x360_16s.mp4", width=640, height=360, seconds=16, fps=10,
                          preset="veryfast", gop_s=2)
        for preset in presets:
            print(json.dumps(frames_part(preset, clip, repeats=args.repeats)), flush=True)
    if "decode" in parts:
        start = time.perf_counter()
        clip = write_clip(args.cache / "face_1280x720_30s.mp4", width=1280, height=720, seconds=30, fps=30,
                          preset="veryfast", gop_s=2)
        print(json.dumps({"made": str(clip), "seconds": round(time.perf_counter() - start, 1)}), flush=True)
        print(json.dumps(decode_part(clip)), flush=True)
    if "rss" in parts:
        start = time.perf_counter()
        clip = write_clip(args.cache / "face_1920x1080_600s.mp4", width=1920, height=1080, seconds=600, fps=2,
                          preset="ultrafast", gop_s=10)
        print(json.dumps({"made": str(clip), "bytes": clip.stat().st_size,
                          "seconds": round(time.perf_counter() - start, 1)}), flush=True)
        for preset in presets:
            print(json.dumps(rss_part(preset, clip)), flush=True)
    if "gpu" in parts:
        print(json.dumps(gpu_part()), flush=True)


if __name__ == "__main__":
    main()
