"""The Gradio forensics app: degradation lab, verdict, Score-CAM explanations and robustness sweep.

    python app.py [--preset paper|small|tiny-random] [--weights REF] [--device D] [--host H] [--port N] [--share]

Environment (for Hugging Face Spaces): ``FORENSIC_PRESET``, ``FORENSIC_WEIGHTS``, ``FORENSIC_DEVICE``,
and Gradio's ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``. If the weights cannot be had (e.g.
offline), the app still starts: the lab works and the header says why there is no detector.

Named API endpoints (``gradio_client``): ``/degrade``, ``/analyze``, ``/sweep``. Every handler calls
:mod:`forensic` and turns its result into components (:mod:`webapp.render`); no model logic here.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import gradio as gr

    from forensic.pipeline import Detector

__all__ = ["build_demo", "load_detector", "main", "EXAMPLES"]

log = logging.getLogger("app")

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
#: (file, caption) of the examples under the image input
EXAMPLES = (
    ("astronaut_face.png", "Astronaut, 256 px face crop (real)"),
    ("astronaut_face_selfblend.png", "Astronaut crop, self-blended (GENERATED)"),
    ("astronaut.jpg", "Astronaut, full photo: small face (real)"),
    ("astronaut_selfblend.jpg", "Full photo, self-blended (GENERATED)"),
    ("coffee.jpg", "Coffee: no face (real)"),
)
#: Gradio's worker threads (its default is 40). Handlers run at most 1 (model) + 2 (lab) at a time,
#: and every thread that ever ran one keeps its own malloc arena: fewer threads, less idle memory.
MAX_THREADS = 6
FAMILY_CHOICES = ("compound", "jpeg", "gnoise", "gblur", "motion-blur", "resize")
EXPLAIN_CHOICES = (("fast Score-CAM (grouped channels)", "fast"), ("exact Score-CAM (one pass per channel, slow)", "exact"), ("none", "none"))
#: Gradio's ``delete_cache`` (every, older than; seconds): uploads and result images are deleted
#: from its cache every 30 minutes once 3 hours old, so a long-running Space never fills its disk.
#: An upload deleted under an open page asks the user to upload it again.
CACHE_CLEANUP = (1800, 3 * 3600)


def build_demo(detector: Detector | None, *, error: str | None = None,
               delete_cache: tuple[int, int] | None = CACHE_CLEANUP) -> gr.Blocks:
    """The app around ``detector``; with ``None``, ``error`` (why there is none) is shown instead.

    Args:
        detector: a loaded :class:`forensic.pipeline.Detector`, or None when the weights are unavailable.
        error: the user-facing reason there is no detector (a ``WeightsUnavailable`` message).
        delete_cache: Gradio's cache clean-up, ``(every, older_than)`` in seconds (None: never).
    """
    import gradio as gr

    from forensic.degrade import MAX_SEED, SpecError, check_seed
    from forensic.images import ImageError
    from forensic.viz import STREAM_TITLES
    from webapp import render
    from webapp.lab import NEUTRAL, LabSettings, build_spec, preset_choices, preview
    from webapp.runtime import UploadImage, decode_upload, default_explain, on_gpu, on_model_thread, user_error

    if detector is None and error is None:
        error = "No detector was given to build_demo()."
    streams = render.STREAMS

    # -------------------------------------------------------------- heavy work (GPU on ZeroGPU)
    @on_gpu
    def run_analysis(pixels, spec, seed, explain, progress):
        return detector.analyze(pixels, degradation=spec, seed=seed, explain=explain,
                                progress=lambda stage, frac: progress(frac, desc=stage))

    @on_gpu
    def run_sweep(pixels, family, seed, progress):
        from forensic.sweep import robustness_sweep

        return robustness_sweep(detector, pixels, family=family, seed=seed,
                                progress=lambda stage, frac: progress(frac, desc=stage))

    # -------------------------------------------------------------- handlers
    def checked_seed(seed) -> int:
        # before any work, in one line: a seed past 64 bits used to fail late, in Gradio's JSON output
        try:
            return check_seed(0 if seed is None else seed)
        except ValueError as exc:
            raise user_error(exc) from None

    def settings(preset, jpeg_quality, gblur_sigma, motion_length, motion_angle, gnoise_sigma, resize_scale, compound_strength, seed) -> LabSettings:
        return LabSettings(preset=preset or "none", jpeg_quality=int(jpeg_quality), gblur_sigma=float(gblur_sigma),
                           motion_length=int(motion_length), motion_angle=float(motion_angle), gnoise_sigma=float(gnoise_sigma),
                           resize_scale=float(resize_scale), compound=float(compound_strength), seed=checked_seed(seed))

    def degrade_image(image, preset, jpeg_quality, gblur_sigma, motion_length, motion_angle, gnoise_sigma, resize_scale, compound_strength, seed):
        """The degraded image, the spec (for `python -m forensic degrade`), a summary and the details as JSON.

        A bad upload or setting is *returned* (no image, the message in the summary and as ``error`` in
        the JSON) so that the page never keeps showing the previous image's preview.
        """
        if not image:
            return None, "", "Upload an image to start.", None
        try:
            lab = settings(preset, jpeg_quality, gblur_sigma, motion_length, motion_angle, gnoise_sigma, resize_scale, compound_strength, seed)
            decoded = decode_upload(image)
            result = preview(decoded.pixels, lab)
        except (gr.Error, SpecError, ValueError) as exc:
            # shown in place (no toast: Gradio's image input fires change twice for a broken file)
            message = exc.message if isinstance(exc, gr.Error) else user_error(exc).message
            return None, "", f"⚠ **{message}**", {"error": message}
        info = render.jsonable({**result.to_dict(), "size": [decoded.width, decoded.height], "notes": list(decoded.notes)})
        return result.image, result.spec or "", render.lab_markdown(result), info

    def analyze_image(image, preset, jpeg_quality, gblur_sigma, motion_length, motion_angle, gnoise_sigma, resize_scale, compound_strength, seed,
                      explain="fast", progress=gr.Progress()):
        """Verdict, the regions each stream saw, three Score-CAM overlays, entropy/similarity/stability plots, the report JSON."""
        from forensic import viz

        lab = settings(preset, jpeg_quality, gblur_sigma, motion_length, motion_angle, gnoise_sigma, resize_scale, compound_strength, seed)
        decoded = decode_upload(image)
        try:
            if detector is None:
                return face_only(decoded, lab)
            report = on_model_thread(run_analysis, decoded.pixels, build_spec(lab), lab.seed, explain or "fast", progress)
        except (ImageError, SpecError, ValueError) as exc:
            raise user_error(exc) from exc
        overlays = viz.stream_overlays(report)
        images = [overlays.get(n) for n in streams]
        sims = {key: render.relayout(viz.similarity_figure(m, title=title)) if m is not None else None
                for key, m, title in (("cam", report.cam_similarity, "Score-CAM map similarity between streams"),
                                      ("feat", report.feature_similarity, "Feature (CLS) cosine similarity between streams"))}
        return (render.verdict_label(report), render.verdict_markdown(report), render.regions_image(report), *images,
                viz.entropy_figure(report), sims["feat"], sims["cam"], render.stability_figure(report), render.jsonable(report.to_dict()))

    def face_only(decoded, lab):
        # no weights: show what the face detector finds, which needs no model weights
        from forensic import viz
        from forensic.faces import get_default_detector

        pixels = preview(decoded.pixels, lab).image
        face = on_model_thread(get_default_detector().analyze, pixels)
        box = None if face.box is None else (face.box.x0, face.box.y0, face.box.x1, face.box.y1)
        regions = {"face": face.region} if face.mode == "crop" else {}
        drawn = viz.draw_regions(pixels, regions, face_box=box)
        return (None, render.face_only_markdown(face, error), drawn, None, None, None, None, None, None, None,
                render.jsonable({"error": error, "face": face.to_dict()}))

    def auto_analyze(image, *lab_values, progress=gr.Progress()):
        # a new upload / example / webcam shot gets a verdict at once; clearing the input clears it, and a
        # bad upload replaces the previous verdict by the reason (private: /analyze raises instead)
        blank = (None, "", None, None, None, None, None, None, None, None, None)
        if not image:
            return blank
        try:
            return analyze_image(image, *lab_values, progress=progress)
        except gr.Error as exc:
            return (None, f"### ⚠ {exc.message}", *blank[2:])

    def sweep_image(image, family, seed, progress=gr.Progress()):
        """One degradation family at strengths 0, 0.1, ..., 1: the figure and the rows as JSON."""
        from forensic import viz

        if detector is None:
            raise gr.Error(error, title="No detector loaded", print_exception=False)
        seed = checked_seed(seed)
        decoded = decode_upload(image)
        try:
            result = on_model_thread(run_sweep, decoded.pixels, family or "compound", seed, progress)
        except (SpecError, ValueError) as exc:
            raise user_error(exc) from exc
        title = f"Robustness sweep: {result.family} (seed {result.seed})" + ("  [UNTRAINED weights]" if detector.untrained else "")
        return viz.sweep_figure(result.rows, title=title), render.jsonable(result.to_dict())

    # -------------------------------------------------------------- layout
    describe = detector.describe() if detector is not None else None
    untrained = bool(detector is not None and detector.untrained)
    with gr.Blocks(title="Robust deepfake forensics lab", delete_cache=delete_cache) as demo:
        gr.Markdown(render.header_markdown(describe, untrained=untrained, error=error), elem_id="header")
        with gr.Row(equal_height=False):
            with gr.Column():
                image = UploadImage(label="Image (upload, paste or webcam)", sources=["upload", "clipboard", "webcam"], type="filepath", image_mode=None,
                                    format="png", height=380, elem_id="input-image")
                gr.Examples([[str(EXAMPLES_DIR / f)] for f, _ in EXAMPLES if (EXAMPLES_DIR / f).exists()], inputs=[image],
                            example_labels=[c for f, c in EXAMPLES if (EXAMPLES_DIR / f).exists()], label="Examples (see examples/README.md)")
            with gr.Column():
                degraded = gr.Image(label="Degraded preview (what the streams will see)", format="png", interactive=False,
                                    height=380, elem_id="degraded-image")
                spec_box = gr.Textbox(label="Spec (paste into `python -m forensic degrade --spec ...`)", interactive=False,
                                      buttons=["copy"], elem_id="spec")
                lab_info = gr.Markdown("Upload an image to start.", label="Degradation summary", elem_id="lab-info")
        with gr.Accordion("Degradation lab", open=True):
            with gr.Row():
                preset = gr.Dropdown(preset_choices(), value="none", label="Preset (applied first)", scale=2)
                compound = gr.Slider(0, 1, value=NEUTRAL.compound, step=0.1, label="Paper's compound engine: strength (0 = off)")
                seed = gr.Number(value=0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed")
            with gr.Row():
                jpeg = gr.Slider(5, 100, value=NEUTRAL.jpeg_quality, step=1, label="JPEG quality (100 = off)", elem_id="jpeg-quality")
                gblur = gr.Slider(0, 8, value=NEUTRAL.gblur_sigma, step=0.1, label="Gaussian blur sigma, px (0 = off)")
                gnoise = gr.Slider(0, 100, value=NEUTRAL.gnoise_sigma, step=1, label="Gaussian noise sigma, 0-255 (0 = off)")
            with gr.Row():
                motion = gr.Slider(1, 51, value=NEUTRAL.motion_length, step=2, label="Motion blur length, px (1 = off)")
                angle = gr.Slider(0, 180, value=NEUTRAL.motion_angle, step=5, label="Motion blur angle, degrees")
                resize = gr.Slider(0.1, 1, value=NEUTRAL.resize_scale, step=0.05, label="Resize factor, down and back up (1 = off)")
            with gr.Accordion("Applied operations as JSON", open=False):
                lab_json = gr.JSON(label="Degradation details")
        lab_controls = [preset, jpeg, gblur, motion, angle, gnoise, resize, compound, seed]

        with gr.Tab("Verdict and explanations"):
            with gr.Row():
                start_with = default_explain(detector)
                explain = gr.Radio(
                    [(a, b) for a, b in EXPLAIN_CHOICES], value=start_with, label="Explanations", scale=3,
                    info=None if start_with == "fast" else "On this CPU, Score-CAM of this model takes minutes per image; the verdict alone takes seconds.",
                )
                analyze_btn = gr.Button("Analyze", variant="primary", scale=1, elem_id="analyze")
            with gr.Row(equal_height=False):
                with gr.Column(scale=2):
                    label = gr.Label(label="Ensemble verdict: P(fake) on the 0.1 grid", elem_id="verdict-label")
                    verdict = gr.Markdown(label="Verdict details", elem_id="verdict")
                regions = gr.Image(label="Where each stream looked", format="png", interactive=False, scale=1, elem_id="regions")
            with gr.Row():
                overlay_images = [gr.Image(label=f"{STREAM_TITLES[n]}: Score-CAM", format="png", interactive=False, elem_id=f"overlay-{n}")
                                  for n in streams]
            with gr.Row():
                # the figures carry their own titles; Gradio's label badge would cover them
                entropy_plot = gr.Plot(label="Attention entropy", format="png", show_label=False)
                stability_plot = gr.Plot(label="Clean-vs-degraded stability", format="png", show_label=False)
            with gr.Row():
                feat_plot = gr.Plot(label="Inter-stream feature similarity", format="png", show_label=False)
                cam_plot = gr.Plot(label="Inter-stream Score-CAM similarity", format="png", show_label=False)
            with gr.Accordion("Full report (JSON)", open=False):
                report_json = gr.JSON(label="Report")
        with gr.Tab("Robustness sweep"):
            with gr.Row():
                family = gr.Dropdown(list(FAMILY_CHOICES), value="compound", label="Degradation family (strength 0, 0.1, ..., 1)")
                sweep_btn = gr.Button("Run sweep", variant="primary")
            sweep_plot = gr.Plot(label="P(fake), attention entropy and stability against strength", format="png", show_label=False)
            with gr.Accordion("Sweep rows (JSON)", open=False):
                sweep_json = gr.JSON(label="Rows")

        # -------------------------------------------------------------- events
        analysis_outputs = [label, verdict, regions, *overlay_images, entropy_plot, feat_plot, cam_plot, stability_plot, report_json]
        gr.on([image.change, *(c.change for c in lab_controls)], degrade_image, [image, *lab_controls],
              [degraded, spec_box, lab_info, lab_json], api_name="degrade", trigger_mode="always_last",
              show_progress="minimal", concurrency_limit=2)
        analyze_btn.click(analyze_image, [image, *lab_controls, explain], analysis_outputs, api_name="analyze",
                          concurrency_limit=1, concurrency_id="detector")
        image.change(auto_analyze, [image, *lab_controls], analysis_outputs, api_visibility="private",
                     concurrency_limit=1, concurrency_id="detector", trigger_mode="always_last")
        sweep_btn.click(sweep_image, [image, family, seed], [sweep_plot, sweep_json], api_name="sweep",
                        concurrency_limit=1, concurrency_id="detector")
    demo.queue(default_concurrency_limit=2, max_size=64)
    return demo


def load_detector(
    preset: str, *, weights: str | None = None, device: str | None = None, dtype: str | None = None
) -> tuple[Detector | None, str | None]:
    """The detector, or ``(None, message)`` when it cannot be loaded (the app starts anyway).

    Any failure to load (weights unavailable offline, a damaged weights folder, an invalid
    config.json, or anything unforeseen) leaves the app serving: on a Space a crash here would be
    a crash loop. The message is one line for the header.
    """
    from forensic.pipeline import Detector
    from forensic.weights import WeightsUnavailable

    try:
        return Detector.from_preset(preset, weights=weights, device=device, dtype=dtype), None
    except WeightsUnavailable as exc:  # also WeightsInvalid: the message already says what to do
        log.warning("Starting without a detector: %s", exc)
        return None, " ".join(str(exc).split())
    except Exception as exc:  # noqa: BLE001 - the app must serve whatever went wrong; the traceback goes to the log
        log.exception("Starting without a detector: loading it failed")
        detail = " ".join(str(exc).split()) or "no details"
        detail = detail if len(detail) <= 300 else detail[:297] + "..."
        return None, (
            f"The detector could not be loaded ({type(exc).__name__}: {detail}). "
            "Check --weights / FORENSIC_WEIGHTS and the log, or run with --preset tiny-random."
        )


def _parser() -> argparse.ArgumentParser:
    from forensic.presets import preset_names

    env = os.environ.get
    p = argparse.ArgumentParser(description="The robust deepfake forensics lab (Gradio app).")
    p.add_argument("--preset", choices=preset_names(), default=env("FORENSIC_PRESET", "paper"),
                   help="model preset (env FORENSIC_PRESET; default paper)")
    p.add_argument("--weights", default=env("FORENSIC_WEIGHTS") or None, metavar="REF",
                   help="a weights folder or hf-hub:owner/repo[@rev] (env FORENSIC_WEIGHTS)")
    p.add_argument("--device", default=env("FORENSIC_DEVICE") or None, help="cpu, cuda, cuda:1 ... (env FORENSIC_DEVICE)")
    p.add_argument("--dtype", choices=["auto", "float32", "bfloat16"], default=env("FORENSIC_DTYPE") or None,
                   help="weights dtype (env FORENSIC_DTYPE; auto = bf16 on CUDA, float32 on CPU)")
    p.add_argument("--host", default=None, help="address to bind (default: GRADIO_SERVER_NAME or 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default: GRADIO_SERVER_PORT or 7860)")
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    return p


def ensure_face_detector() -> None:
    """On a Hugging Face Space, installs facenet-pytorch without its (outdated) dependency pins.

    facenet-pytorch 2.6.0 declares torch<2.3, numpy<2 and Pillow<10.3, so it cannot be listed in
    requirements.txt next to the modern stack it actually runs on, and a requirements file cannot
    say --no-deps. Locally the Makefile installs it; a Space only runs ``pip install -r
    requirements.txt``, so the app does this one step itself there (and nowhere else).
    """
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec("facenet_pytorch") is not None or not os.environ.get("SPACE_ID"):
        return
    log.info("installing facenet-pytorch 2.6.0 without dependencies (Space start-up)")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "facenet-pytorch==2.6.0"], check=False)


def main(argv: list[str] | None = None) -> int:
    """Parses flags, loads the detector (or the reason there is none) and serves the app until stopped."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own start-up requests are noise
    args = _parser().parse_args(argv)
    ensure_face_detector()
    detector, error = load_detector(args.preset, weights=args.weights, device=args.device, dtype=args.dtype)
    demo = build_demo(detector, error=error)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share or None, max_file_size="50mb", max_threads=MAX_THREADS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
