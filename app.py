"""The Gradio forensics app: degradation lab, verdict, Score-CAM explanations, comparison, sweep, batch, video and report.

    python app.py [--preset paper|small|tiny-random] [--weights REF] [--device D] [--host H] [--port N] [--share]

Environment (for Hugging Face Spaces): ``FORENSIC_PRESET``, ``FORENSIC_WEIGHTS``, ``FORENSIC_DEVICE``,
and Gradio's ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``. If the weights cannot be had (e.g.
offline), the app still starts: the lab works and the header says why there is no detector.

Named API endpoints (``gradio_client``): ``/degrade``, ``/analyze``, ``/report``, ``/compare``, ``/sweep``,
``/analyze_batch``, ``/analyze_video`` (a clip, fps, max_frames, crf, the lab's spec and seed, explain -> the
clip's JSON record and its per-frame CSV). This file only wires events: the components are laid out in
:mod:`webapp.layout`, the
behaviour is :class:`webapp.handlers.Handlers`, which calls :mod:`forensic`; no model logic here.
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
    from forensic.runtime import RuntimeConfig

__all__ = ["build_demo", "load_detector", "main", "EXAMPLES"]

log = logging.getLogger("app")

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
#: (file, caption) of the examples under the image input
EXAMPLES = (
    ("astronaut_face.png", "face crop, 256 px (real)"),
    ("astronaut_face_selfblend.png", "face crop, blended (GENERATED)"),
    ("astronaut.jpg", "full photo, small face (real)"),
    ("astronaut_selfblend.jpg", "full photo, blended (GENERATED)"),
    ("coffee.jpg", "coffee cup: no face (real)"),
)
#: the Video tab's example clip (examples/make_example_clip.py: the face crop, blended from 3 s to 5 s)
EXAMPLE_CLIP = "astronaut_blend_clip.mp4"
#: Gradio's worker threads (its default is 40). Handlers run at most 1 (model) + 2 (lab) at a time,
#: and every thread that ever ran one keeps its own malloc arena: fewer threads, less idle memory.
MAX_THREADS = 6
#: Gradio's ``delete_cache`` (every, older than; seconds): uploads and result images are deleted
#: from its cache every 30 minutes once 3 hours old, so a long-running Space never fills its disk.
#: An upload deleted under an open page asks the user to upload it again.
CACHE_CLEANUP = (1800, 3 * 3600)


#: what each event returns, by component name (the views in webapp/views.py have these fields)
ANALYSIS_API = ("vote", "details", "regions", "overlay_texture", "overlay_face", "overlay_fusion",
                "entropy_plot", "feat_plot", "cam_plot", "stability_plot", "report_json")
ANALYSIS_PAGE = (*ANALYSIS_API, "status", "limits", "provenance", "regions_caption", "caption_texture", "caption_face", "caption_fusion",
                 "report_html_file", "report_json_file", "analysed", "results")
COMPARE_API = ("clean_texture", "clean_face", "clean_fusion", "degraded_texture", "degraded_face", "degraded_fusion",
               "drift_plot", "drift_json")
COMPARE_PAGE = (*COMPARE_API, "mapdiff_texture", "mapdiff_face", "mapdiff_fusion", "compare_status",
                "compare_caption_texture", "compare_caption_face", "compare_caption_fusion",
                "compared", "compare_results")
SWEEP_API = ("sweep_plot", "sweep_json")
SWEEP_PAGE = (*SWEEP_API, "sweep_status", "swept")
FILMSTRIP = ("filmstrip_plot", "filmstrip_png")
CLOSEUP = ("closeup_caption", "closeup_where_pic", "closeup_title_clean", "closeup_title_degraded", "closeup_title_diff",
           "closeup_clean", "closeup_degraded", "closeup_diff", "closeup_note")
BATCH_PAGE = ("batch_status", "batch_table", "batch_csv")
STALE = ("status", "results", "compare_status", "compare_results", "sweep_status", "report_html_file", "report_json_file")


def build_demo(detector: Detector | None, *, error: str | None = None,
               delete_cache: tuple[int, int] | None = CACHE_CLEANUP) -> gr.Blocks:
    """The app around ``detector``; with ``None``, ``error`` (why there is none) is shown instead.

    Args:
        detector: a loaded :class:`forensic.pipeline.Detector`, or None when the weights are unavailable.
        error: the user-facing reason there is no detector (a ``WeightsUnavailable`` message).
        delete_cache: Gradio's cache clean-up, ``(every, older_than)`` in seconds (None: never).
    """
    import gradio as gr

    from webapp import layout, render
    from webapp.handlers import Handlers
    from webapp.runtime import default_explain
    from webapp.views import WAIT_JS

    example_list = layout.examples(EXAMPLES_DIR, EXAMPLES)
    handlers = Handlers(detector, error=error, examples=[full for full, _, _ in example_list])
    describe = detector.describe() if detector is not None else None
    header = render.header_markdown(describe, untrained=bool(detector is not None and detector.untrained), error=handlers.error)
    with gr.Blocks(title="Robust deepfake forensics lab", delete_cache=delete_cache) as demo:
        page = layout.build_page(header=header, detector_ready=detector is not None, start_explain=default_explain(detector),
                                 example_list=example_list, example_clip=(EXAMPLES_DIR / EXAMPLE_CLIP).exists())
        _wire(page, handlers)
        _wire_video(page, handlers, str(EXAMPLES_DIR / EXAMPLE_CLIP))
        _wire_lab_state(demo, page, ready=detector is not None)
    with demo:  # the wait from the user's request, added to the status line in the browser (webapp.views.WAIT_JS)
        demo.load(None, None, None, js=WAIT_JS, api_visibility="private", show_progress="hidden")
    demo.queue(default_concurrency_limit=2, max_size=64)
    return demo


def _returning(fn, names: tuple[str, ...]):
    """``fn`` returning its view's fields ``names`` in order; Gradio still sees ``fn``'s signature (API
    parameter names, the ``gr.Progress`` it injects)."""
    import functools

    from webapp.views import values

    @functools.wraps(fn)
    def run(*args, **kwargs):
        return values(fn(*args, **kwargs), names)

    return run


def _with_lab(fn):
    """``fn(image, lab, *rest)`` called as Gradio calls an event: ``(image, *controls, *rest)``, the controls
    in :attr:`webapp.lab.LabSettings.CONTROLS`' order, built into one ``LabSettings``. Gradio sees the
    controls as parameters (the API's names: ``/analyze``'s ``jpeg_quality``, ...) and ``fn``'s others."""
    import functools
    import inspect

    from webapp.lab import LabSettings

    n = len(LabSettings.CONTROLS)
    image, _, *rest = inspect.signature(fn).parameters.values()
    controls = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in LabSettings.CONTROLS]

    @functools.wraps(fn)
    def run(image, *args, **kwargs):
        return fn(image, LabSettings.from_controls(*args[:n]), *args[n:], **kwargs)

    run.__signature__ = inspect.signature(fn).replace(parameters=[image, *controls, *rest])
    return run


def _wire(page, h) -> None:
    """The events: each names its handler, inputs and outputs; the API endpoints raise, the page's handlers do not."""
    import gradio as gr

    lab, image = page.lab, page.image
    inputs = [image, *lab, page.explain]
    analysis = [*inputs, page.vote_without_face]  # Analyze, the upload and /analyze, /report: the vote's face setting too
    detector_queue = {"concurrency_limit": 1, "concurrency_id": "detector"}
    on_status = {"show_progress_on": [page.status]}  # one progress bar, not one on each of 20 panels
    stale = {"fn": _with_lab(h.lab_changed), "inputs": [image, *lab, page.analysed, page.compared, page.swept],
             "outputs": page.get(STALE), "api_visibility": "private", "show_progress": "hidden", "concurrency_limit": None}

    # the lab: a preview on every change; results that no longer match it are marked out of date
    gr.on([image.change, *(c.change for c in lab)], _with_lab(h.degrade), [image, *lab], page.get(("degraded", "spec_box", "lab_info", "lab_json")),
          api_name="degrade", trigger_mode="always_last", show_progress="minimal", concurrency_limit=2)
    gr.on([c.change for c in lab], trigger_mode="always_last", **stale)
    page.examples.select(h.pick_example, None, image, api_visibility="private", show_progress="hidden")

    # look closely (Compare tab): follows the preview; a click on its small picture picks the point
    closely = {"fn": _returning(_with_lab(h.look_closely), CLOSEUP), "api_visibility": "private", "show_progress": "hidden",
               "inputs": [image, *lab, page.closeup_where, page.closeup_zoom, page.closeup_point],
               "outputs": page.get(CLOSEUP), "concurrency_limit": 2}
    gr.on([page.degraded.change, page.closeup_where.input, page.closeup_zoom.input], trigger_mode="always_last", **closely)
    page.closeup_where_pic.select(h.closeup_click, [image], [page.closeup_point, page.closeup_where], api_visibility="private",
                                  show_progress="hidden").then(**closely)

    # a new upload is analysed at once (with the chosen explanations); the comparison and sweep are cleared
    image.change(_returning(_with_lab(h.upload_in_place), ANALYSIS_PAGE), analysis, page.get(ANALYSIS_PAGE), api_visibility="private",
                 trigger_mode="always_last", **on_status, **detector_queue).then(**stale)
    image.change(_returning(h.clear_compare, COMPARE_PAGE), [image], page.get(COMPARE_PAGE), api_visibility="private",
                 show_progress="hidden")
    image.change(_returning(h.clear_sweep, (*SWEEP_PAGE, *FILMSTRIP)), [image, page.seed], page.get((*SWEEP_PAGE, *FILMSTRIP)),
                 api_visibility="private", show_progress="hidden")

    # the page's buttons: messages in place, never an error pill on every panel
    page.analyze_btn.click(_returning(_with_lab(h.analyze_in_place), ANALYSIS_PAGE), analysis, page.get(ANALYSIS_PAGE),
                           api_visibility="private", **on_status, **detector_queue).then(**stale)
    page.vote_without_face.change(h.vote_setting_changed, [page.vote_without_face, page.analysed], [page.status],
                                  api_visibility="private", show_progress="hidden")
    page.compare_btn.click(_returning(_with_lab(h.compare_in_place), COMPARE_PAGE), inputs, page.get(COMPARE_PAGE),
                           api_visibility="private", show_progress_on=[page.compare_status], **detector_queue).then(**stale)
    page.sweep_btn.click(_returning(h.sweep_in_place, SWEEP_PAGE), [image, page.family, page.seed, page.spec_box],
                         page.get(SWEEP_PAGE), api_visibility="private", show_progress_on=[page.sweep_status],
                         **detector_queue).then(**stale)
    page.filmstrip_btn.click(_returning(h.filmstrip_in_place, (*FILMSTRIP, "sweep_status")), [image, page.family, page.seed],
                             page.get((*FILMSTRIP, "sweep_status")), api_visibility="private",
                             show_progress_on=[page.sweep_status], **detector_queue)
    page.batch_btn.click(_returning(h.batch_in_place, BATCH_PAGE), [page.batch_files], page.get(BATCH_PAGE),
                         api_visibility="private", show_progress_on=[page.batch_status], **detector_queue)

    # the API (gradio_client): no trigger on the page; a bad request raises one line
    gr.on([], _returning(_with_lab(h.analyze), ANALYSIS_API), analysis, page.get(ANALYSIS_API), api_name="analyze", **detector_queue)
    gr.on([], _with_lab(h.report), analysis, [page.report_html_file], api_name="report", **detector_queue)
    gr.on([], _returning(_with_lab(h.compare), COMPARE_API), inputs, page.get(COMPARE_API), api_name="compare", **detector_queue)
    gr.on([], _returning(h.sweep, SWEEP_API), [image, page.family, page.seed], page.get(SWEEP_API), api_name="sweep",
          **detector_queue)
    gr.on([], h.analyze_batch, [page.batch_files], [page.batch_csv], api_name="analyze_batch", **detector_queue)


def _wire_video(page, h, example: str) -> None:
    """The Video tab (:mod:`webapp.video`): a new clip (or the example) is analysed at once; the slider shows a frame."""
    import gradio as gr

    from webapp.video import FRAME_OUT, VIDEO_API, VIDEO_PAGE

    detector_queue = {"concurrency_limit": 1, "concurrency_id": "detector"}
    settings = [page.video_fps, page.video_max_frames, page.video_crf, page.video_use_lab, page.video_explain]
    analyse = {"fn": _returning(_with_lab(h.video.analyze_in_place), VIDEO_PAGE), "inputs": [page.video, *page.lab, *settings],
               "outputs": page.get(VIDEO_PAGE), "api_visibility": "private", "show_progress_on": [page.video_status],
               **detector_queue}
    show = {"fn": h.video.show_frame, "inputs": [page.video_slider, page.video_state], "outputs": page.get(FRAME_OUT),
            "api_visibility": "private", "show_progress": "hidden"}
    page.video.change(trigger_mode="always_last", **analyse).then(**show)
    page.video_btn.click(**analyse).then(**show)
    page.video_example.click(lambda: example, None, page.video, api_visibility="private", show_progress="hidden")
    page.video_slider.input(trigger_mode="always_last", **show)
    # a setting (or the lab, when applied) changed since the analysis: the status says so
    gr.on([c.change for c in (*page.lab, *settings)], _with_lab(h.video.settings_changed), [page.video, *page.lab, *settings,
          page.video_state], [page.video_status], trigger_mode="always_last", api_visibility="private", show_progress="hidden",
          concurrency_limit=None)
    gr.on([], h.video.analyze, [page.video, page.video_fps, page.video_max_frames, page.video_crf, page.spec_box, page.seed,
                                page.video_explain], page.get(VIDEO_API), api_name="analyze_video", **detector_queue)


def _wire_lab_state(demo, page, *, ready: bool) -> None:
    """The lab-state link (:mod:`webapp.labstate`): written on demand, restored from a pasted code or the page's ``?lab=``."""
    from webapp.labstate import LINK_JS, page_events

    link, restore, load = page_events(explain_ready=ready)
    state = [*page.lab, page.family, page.explain]
    quiet = {"api_visibility": "private", "show_progress": "hidden"}
    page.lab_link_btn.click(link, state, [page.lab_code, page.lab_code_status], **quiet).then(
        None, [page.lab_code], [page.lab_code], js=LINK_JS, **quiet)
    page.lab_restore_btn.click(restore, [page.lab_code], [*state, page.lab_code_status], **quiet)
    page.lab_code.submit(restore, [page.lab_code], [*state, page.lab_code_status], **quiet)
    demo.load(load, None, [*state, page.lab_code_status, page.lab_code], **quiet)


def load_detector(
    preset: str | None = None,
    *,
    weights: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    runtime: RuntimeConfig | None = None,
) -> tuple[Detector | None, str | None]:
    """The detector ``runtime`` (default: the environment's) names, with the arguments given on
    top, or ``(None, message)`` when it cannot be loaded (the app starts anyway).

    Any failure to load (weights unavailable offline, a damaged weights folder, an invalid
    config.json, or anything unforeseen) leaves the app serving: on a Space a crash here would be
    a crash loop. The message is one line for the header.
    """
    from forensic.pipeline import Detector
    from forensic.runtime import default_runtime
    from forensic.weights import WeightsUnavailable

    try:
        runtime = (runtime or default_runtime()).replace(preset=preset, weights=weights, device=device, dtype=dtype)
        return Detector.from_runtime(runtime), None
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
    from forensic.options import add_model_args

    p = argparse.ArgumentParser(description="The robust deepfake forensics lab (Gradio app).")
    add_model_args(p)
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
    from forensic.options import runtime_from_args
    from forensic.runtime import RuntimeConfigError

    args = _parser().parse_args(argv)
    from webapp.runtime import limit_malloc_arenas

    limit_malloc_arenas()  # before the server's threads start: its idle memory then stays flat under load
    ensure_face_detector()
    try:
        runtime = runtime_from_args(args)
    except RuntimeConfigError as exc:  # a bad FORENSIC_* variable: serve and say so (a Space must not crash-loop)
        detector, error = None, f"{exc} (fix the variable and restart)"
    else:
        detector, error = load_detector(runtime=runtime)
    demo = build_demo(detector, error=error)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share or None, max_file_size="50mb", max_threads=MAX_THREADS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
