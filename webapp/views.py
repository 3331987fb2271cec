"""What the page shows, as data: one dataclass per group of panels, built from reports by pure functions.

A view's field names are those of the page's components (:class:`webapp.layout.Page`), so an event
returns ``values(view, names)``. Nothing here runs a model: :mod:`webapp.handlers` does, then
calls these builders. Every view says which image it describes, and ``analysed`` / ``compared``
keep that (spec and seed) so that a later lab change can mark it out of date.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np

from forensic import viz
from forensic.degrade import FAMILIES

from . import render
from .closeup import map_differences
from .vote import vote_html

__all__ = [
    "AnalysisView",
    "CompareView",
    "SweepView",
    "BatchView",
    "values",
    "status_html",
    "results_class",
    "analysis_view",
    "face_only_view",
    "compare_view",
    "NEEDS_DETECTOR",
    "NOTES",
    "FAMILY_CHOICES",
    "provenance_markdown",
    "WAIT_JS",
]

STREAMS = render.STREAMS
#: the families the robustness sweep offers (``forensic.degrade.FAMILIES``), the compound engine first
FAMILY_CHOICES = ("compound", *(f for f in FAMILIES if f != "compound"))
NEEDS_DETECTOR = "Needs the detector, which is not loaded (the header says why)."
#: "What am I looking at?" under each figure (also in the downloadable report)
NOTES = {
    "entropy": "How spread out each stream's attention is: entropy divided by ln N, the most it can be for N patches. "
               "1 = spread evenly over the whole input, near 0 = focused on a few patches. Hatched: the same for the "
               "Score-CAM map.",
    "stability": "How far the degradation moved each stream's features: the cosine between the features of the clean and "
                 "of the degraded image. 1 = unchanged; lower = the stream sees a different image.",
    "features": "How alike the three streams' features are (cosine of their DINOv2 CLS vectors). Low values mean the "
                "streams extract different information: the paper's argument for combining them.",
    "cams": "Whether the streams look at the same places: cosine between their Score-CAM maps in image coordinates. "
            "1 = the same places, near 0 = different places.",
    "drift": "Solid: cosine between each stream's clean and degraded Score-CAM maps (1 = it looks at the same places). "
             "Hatched: the same for its features.",
    "sweep": "Left: the vote (black steps) and each stream's P(fake) as the degradation grows. Middle: how spread out each "
             "stream's attention is. Right: the cosine between each stream's features on the clean and the degraded image.",
}
_OFF = "Explanations are off:\nchoose a Score-CAM method above, then Analyze."
#: run once on page load: the time from the user's request (Analyze, an upload, an example) to the fresh result,
#: measured in the browser and added to the status line, so that the page never states less than the wait
#: (the server's own times, in the verdict's notes, leave out sending the image and preparing it for the handler)
WAIT_JS = """() => {
  if (window.fvWait) return;
  const w = window.fvWait = {start: null, running: false, said: null};
  const begin = (e) => {
    const t = e.target instanceof Element ? e.target : null;
    if (!t) return;
    const upload = t.closest('#input-image') && e.type !== 'click';
    if (t.closest('#analyze') || t.closest('#examples .thumbnail-item') || upload) {
      w.start = performance.now(); w.running = false; w.said = null;  // a new request: the last wait no longer applies
      document.querySelectorAll('#analysis-status .fv-waited').forEach((old) => old.remove());
    }
  };
  for (const type of ['click', 'change', 'drop', 'paste']) document.addEventListener(type, begin, true);
  const mark = () => {
    const box = document.querySelector('#analysis-status');
    if (!box || w.start === null && !w.said) return;
    const pending = box.querySelector('.pending');
    if (w.start !== null && pending) w.running = true;
    const line = box.querySelector('.status-fresh');
    if (w.start !== null && w.running && !pending && line) {
      w.said = [line.textContent, ((performance.now() - w.start) / 1000).toFixed(1)];
      w.start = null;
    }
    if (line && w.said && !line.querySelector('.fv-waited') && line.textContent === w.said[0]) {
      const span = document.createElement('span');
      span.className = 'fv-waited';
      span.textContent = ` You waited ${w.said[1]} s from your request (sending and preparing the image included).`;
      line.append(span);
    }
  };
  new MutationObserver(mark).observe(document.body, {childList: true, subtree: true, attributes: true, attributeFilter: ['class']});
}"""
#: without a detector: each figure's panel, its title and what it would show
_NO_DETECTOR_FIGURES = (
    ("entropy_plot", "How spread out is each stream's attention?", "no attention to measure"),
    ("stability_plot", "Did the degradation move each stream's features?", "no features to compare"),
    ("feat_plot", "How alike are the streams' features?", "no features to compare"),
    ("cam_plot", "Do the streams look at the same places?", "no Score-CAM maps"),
)


def status_html(text: str, kind: str = "fresh") -> str:
    """One status line (Markdown-ish ``**bold**`` and `code`): ``fresh``, ``stale``, ``error`` or ``info``."""
    return f"<div class='status-{kind}'>{render.md_inline(text)}</div>"


def results_class(stale: bool) -> dict:
    """The update of a results column: dimmed (``stale-results``) while it no longer matches the lab."""
    return gr.update(elem_classes=["results", "stale-results"] if stale else ["results"])


@dataclass(frozen=True)
class AnalysisView:
    """Everything Analyze shows."""

    status: str = ""
    vote: str = ""
    limits: str = ""
    details: str = ""
    provenance: str = ""
    regions_caption: str = "**Where each stream looked**"
    regions: np.ndarray | None = None
    caption_texture: str = ""
    caption_face: str = ""
    caption_fusion: str = ""
    overlay_texture: np.ndarray | None = None
    overlay_face: np.ndarray | None = None
    overlay_fusion: np.ndarray | None = None
    entropy_plot: Any = None
    stability_plot: Any = None
    feat_plot: Any = None
    cam_plot: Any = None
    report_json: dict | None = None
    report_html_file: Any = None
    report_json_file: Any = None
    analysed: dict | None = None
    results: Any = None


@dataclass(frozen=True)
class CompareView:
    """The clean image's overlays next to the degraded one's, and how far each stream's map drifted."""

    compare_status: str = ""
    compare_caption_texture: str = ""
    compare_caption_face: str = ""
    compare_caption_fusion: str = ""
    clean_texture: np.ndarray | None = None
    clean_face: np.ndarray | None = None
    clean_fusion: np.ndarray | None = None
    degraded_texture: np.ndarray | None = None
    degraded_face: np.ndarray | None = None
    degraded_fusion: np.ndarray | None = None
    mapdiff_texture: np.ndarray | None = None
    mapdiff_face: np.ndarray | None = None
    mapdiff_fusion: np.ndarray | None = None
    drift_plot: Any = None
    drift_json: dict | None = None
    compared: dict | None = None
    compare_results: Any = None


@dataclass(frozen=True)
class SweepView:
    """A robustness sweep: its figure, rows and what it was swept from; or an attention film-strip and its PNG."""

    sweep_status: str = ""
    sweep_plot: Any = None
    sweep_json: dict | None = None
    swept: dict | None = None
    filmstrip_plot: Any = None
    filmstrip_png: str | None = None


@dataclass(frozen=True)
class BatchView:
    """Several images: a status line, the table and its CSV file."""

    batch_status: str = ""
    batch_table: str = ""
    batch_csv: str | None = None


def values(view: Any, names: Sequence[str]) -> tuple:
    """The view's fields ``names``, in that order (what an event returns to its outputs)."""
    return tuple(getattr(view, n) for n in names)


def _subject(spec: str | None, seed: int, describes: str, status: str) -> dict:
    # what a result describes, kept in the page's state: Handlers.lab_changed compares the lab with it
    return {"spec": spec, "seed": seed, "describes": describes, "status": status}


def provenance_markdown(provenance) -> str:
    """The Analyze page's provenance block: the file's EXIF and C2PA hints, said not to be part of the vote."""
    text = "not read" if provenance is None else provenance.summary()
    # the text comes from the file: its Markdown and HTML are shown as text, not rendered (links, images)
    text = re.sub(r"([\\`*_\[\]()<>#!|~{}+-])", r"\\\1", html.escape(text, quote=False))
    return f"**Provenance hints** (not part of the vote): {text}"


def analysis_view(report, *, threshold: float = 0.5, limits: str = "") -> AnalysisView:
    """Everything Analyze shows for ``report``: the vote, what it cannot tell (``limits``, the box's HTML:
    :func:`webapp.render.limits_html`), the table, regions, overlays with captions, figures."""
    about = render.subject(report, markdown=False)
    explained = report.explain != "none"
    overlays = viz.stream_overlays(report) if explained else {}
    describes = render.subject(report)
    status = status_html(f"✓ These results describe {describes}"
                         + (f", with {report.explain} Score-CAM." if explained else ", without explanations (off)."))
    d = report.degradation
    spec = None if d is None else (d.spec or f"compound:strength={d.compound:g}")
    return AnalysisView(
        status=status,
        vote=vote_html(report, threshold=threshold, subject=f"Describes {about}"),
        limits=limits,
        details=render.details_html(report),
        provenance=provenance_markdown(report.provenance),
        regions_caption=render.regions_caption(report),
        regions=viz.regions_picture(report),
        **{f"caption_{n}": render.overlay_caption(report, n) for n in STREAMS},
        **{f"overlay_{n}": overlays.get(n) for n in STREAMS},
        entropy_plot=viz.entropy_figure(report, subject=about),
        stability_plot=viz.stability_figure(report, subject=about),
        feat_plot=viz.similarity_figure(report.feature_similarity, title="How alike are the streams' features?", subject=about),
        cam_plot=viz.similarity_figure(report.cam_similarity, title="Do the streams look at the same places?", subject=about,
                                           empty=_OFF),
        report_json=render.jsonable(report.to_dict()),
        analysed=_subject(spec, 0 if d is None else d.seed, describes, status),
        results=results_class(False),
    )


def face_only_view(pixels: np.ndarray, face, *, spec: str | None, seed: int, error: str) -> AnalysisView:
    """What Analyze shows without a detector: what the face detector found on ``pixels``, and why there is no verdict."""
    regions = {"face": (face.region, "face crop")} if face.mode == "crop" else {}
    describes = render.describe_lab(spec, seed)
    status = status_html(f"No verdict: no detector is loaded. The face detector ran on {describes}.", "info")
    return AnalysisView(
        status=status,
        vote=(f"<div class='fv'><div class='fv-subject'>Describes {html.escape(render.describe_lab(spec, seed, markdown=False))}"
              f"</div><div class='fv-head fv-none'>No verdict: no detector is loaded</div><p>{render.md_inline(error)}</p></div>"),
        details=render.face_only_html(face),
        regions_caption=render.regions_caption(None, face_only=True),
        regions=viz.draw_regions(pixels, regions, face_box=face.box),
        **{f"caption_{n}": f"**{viz.STREAM_TITLES[n]}**: {NEEDS_DETECTOR}" for n in STREAMS},
        report_json=render.jsonable({"error": error, "face": face.to_dict()}),
        # the figures' panels say why they are empty, instead of staying blank
        **{name: viz.message_figure(f"Needs the detector, which is not loaded\n(the header says why): {what}.", title=title)
           for name, title, what in _NO_DETECTOR_FIGURES},
        analysed=_subject(spec, seed, describes, status),
        results=results_class(False),
    )


def map_drift(clean, degraded) -> dict[str, float | None]:
    """Per stream, the cosine between its clean and degraded Score-CAM maps in image coordinates."""
    import cv2

    from forensic.explain.similarity import map_similarity

    out: dict[str, float | None] = {}
    for n in STREAMS:
        a, b = clean.streams.get(n), degraded.streams.get(n)
        if a is None or b is None or a.cam_image is None or b.cam_image is None:
            out[n] = None
            continue
        mb = b.cam_image
        if mb.shape != a.cam_image.shape:  # no operation resizes today; a future one must not break the comparison
            mb = cv2.resize(mb.astype(np.float32), (a.cam_image.shape[1], a.cam_image.shape[0]), interpolation=cv2.INTER_LINEAR)
        out[n] = map_similarity({"clean": a.cam_image, "degraded": mb}).get("clean", "degraded")
    return out


def compare_view(clean, degraded, *, spec: str, seed: int, method: str, asked: str) -> CompareView:
    """The clean and degraded analyses (with Score-CAM) side by side, with each stream's map cosine.

    Args:
        clean, degraded: the two reports, explained with ``method``.
        asked: the explanation the user had chosen (``none`` is replaced by ``fast``, and the status says so).
    """
    cos = map_drift(clean, degraded)
    stability: Mapping[str, float | None] = {n: degraded.streams[n].stability for n in STREAMS if n in degraded.streams}
    over_clean, over_degraded = viz.stream_overlays(clean), viz.stream_overlays(degraded)
    moved = map_differences(clean, degraded)  # where each stream's attention moved: degraded minus clean
    describes = render.subject(degraded)
    off = "" if asked == method else f" (explanations were {asked}: the comparison used {method} Score-CAM)"
    status = status_html(f"✓ Top row: the clean upload; bottom row: {describes}; {method} Score-CAM{off}.")
    data = {
        "spec": spec, "seed": seed, "method": method,
        "streams": {n: {"map_cosine": cos.get(n), "feature_cosine": stability.get(n),
                        "prob_fake_clean": clean.streams[n].prob_fake, "prob_fake_degraded": degraded.streams[n].prob_fake}
                    for n in STREAMS if n in degraded.streams},
        "prob_fake": {"clean": clean.prob_fake, "degraded": degraded.prob_fake},
    }
    return CompareView(
        compare_status=status,
        **{f"compare_caption_{n}": _drift_caption(n, cos.get(n), stability.get(n), clean, degraded) for n in STREAMS},
        **{f"clean_{n}": over_clean.get(n) for n in STREAMS},
        **{f"degraded_{n}": over_degraded.get(n) for n in STREAMS},
        **{f"mapdiff_{n}": moved.get(n) for n in STREAMS},
        drift_plot=viz.drift_figure(cos, stability, subject=render.subject(degraded, markdown=False)),
        drift_json=render.jsonable(data),
        compared=_subject(spec, seed, describes, status),
        compare_results=results_class(False),
    )


def _drift_caption(name: str, cos: float | None, stability: float | None, clean, degraded) -> str:
    title = f"**{viz.STREAM_TITLES.get(name, name)}**"
    if cos is None:
        return f"{title}: no map"
    moved = "barely moved" if cos >= 0.9 else "moved" if cos >= 0.6 else "moved a lot"
    feat = "" if stability is None else f", features {stability:.2f}"
    region = ("" if clean.streams[name].input.region == degraded.streams[name].input.region
              else "; ⚠ it saw a different region of the degraded image (the face was found elsewhere)")
    p0, p1 = clean.streams[name].prob_fake, degraded.streams[name].prob_fake
    return f"{title}: maps cosine {cos:.2f} ({moved}){feat}; P(fake) {p0:.2f} → {p1:.2f}{region}"
