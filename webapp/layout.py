"""The page's components and where they sit; no behaviour (that is :mod:`webapp.handlers`, wired in ``app.py``).

:func:`build_page` must run inside a ``gr.Blocks`` context; it returns a :class:`Page` whose field
names match the views' fields, so an event's outputs are ``page.get(names)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from forensic.degrade import MAX_SEED
from forensic.explain import method_labels
from forensic.viz import STREAM_TITLES

from . import closeup, figures, render
from .batch import MAX_FILES
from .lab import NEUTRAL, preset_choices
from .report_file import CSS
from .runtime import UploadImage
from .views import FAMILY_CHOICES, NEEDS_DETECTOR, NOTES, status_html
from .video import video_tab

__all__ = ["Page", "build_page", "EXPLAIN_CHOICES", "LAB_NAMES", "examples"]

STREAMS = render.STREAMS
EXPLAIN_CHOICES = method_labels(allow_none=True)
#: the lab's controls, in the order of :attr:`webapp.lab.LabSettings.CONTROLS` (app.py builds the settings from them)
LAB_NAMES = ("preset", "jpeg", "gblur", "motion", "angle", "gnoise", "resize", "compound", "seed")


@dataclass
class Page:
    """The components, by name (the views in :mod:`webapp.views` use the same names)."""

    blocks: dict[str, Any] = field(default_factory=dict)
    example_paths: list[str] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:  # only called for names that are not fields: the components
        try:
            return self.__dict__["blocks"][name]
        except KeyError:
            raise AttributeError(name) from None

    def add(self, name: str, block: Any) -> Any:
        self.blocks[name] = block
        return block

    def get(self, names: tuple[str, ...] | list[str]) -> list[Any]:
        return [self.blocks[n] for n in names]

    @property
    def lab(self) -> list[Any]:
        return self.get(LAB_NAMES)


def examples(folder: Path, entries: tuple[tuple[str, str], ...]) -> list[tuple[str, str, str]]:
    """(full image, thumbnail, caption) of the examples present; a missing thumbnail falls back to the image."""
    out = []
    for name, caption in entries:
        full = folder / name
        if full.exists():
            thumb = folder / "thumbs" / (Path(name).stem + ".jpg")
            out.append((str(full), str(thumb if thumb.exists() else full), caption))
    return out


def build_page(*, header: str, detector_ready: bool, start_explain: str, example_list: list[tuple[str, str, str]],
               example_clip: bool = False) -> Page:
    """Lays the page out. With ``detector_ready`` False the controls that need a detector are off, with the reason.
    ``example_clip``: the Video tab offers the example clip."""
    page = Page()
    gr.HTML(f"<style>{CSS}</style>", elem_id="app-style", padding=False)
    page.add("header", gr.Markdown(header, elem_id="header"))
    with gr.Column(elem_id="workbench"):  # on a phone the degraded preview stays in view over the lab (style.css)
        _inputs(page, example_list)
        _lab(page)
    with gr.Tabs(elem_id="tabs", overflow_behavior="wrap"):  # every tab in sight on a phone, none behind "..."
        with gr.Tab("Verdict and explanations", id="verdict-tab"):
            _verdict(page, detector_ready, start_explain)
        with gr.Tab("Clean vs degraded", id="compare-tab"):
            _compare(page, detector_ready)
        with gr.Tab("Robustness sweep", id="sweep-tab"):
            _sweep(page, detector_ready)
        with gr.Tab("Several images", id="batch-tab", elem_id="batch-area"):
            _batch(page, detector_ready)
        with gr.Tab("Video", id="video-tab", elem_id="video-area"):
            video_tab(page, ready=detector_ready, start_explain=start_explain, explain_choices=list(EXPLAIN_CHOICES),
                      example=example_clip)
    for name in ("analysed", "compared", "swept"):
        page.add(name, gr.State(None))
    return page


def _inputs(page: Page, example_list: list[tuple[str, str, str]]) -> None:
    with gr.Row(equal_height=False):
        with gr.Column():
            page.add("image", UploadImage(label="Image (upload, paste or webcam)", sources=["upload", "clipboard", "webcam"],
                                          type="filepath", image_mode=None, format="png", height=380, elem_id="input-image"))
            page.add("examples", gr.Gallery(
                [(thumb, caption) for _, thumb, caption in example_list], label="Examples: click one (licences in examples/README.md)",
                columns=len(example_list) or 1, allow_preview=False, height="auto", object_fit="cover", elem_id="examples",
                buttons=[], interactive=False,
            ))
            page.example_paths = [full for full, _, _ in example_list]
        with gr.Column():
            page.add("degraded", gr.Image(label="Degraded preview (what the streams will see)", format="png", interactive=False,
                                          height=380, elem_id="degraded-image"))
            page.add("spec_box", gr.Textbox(label="Spec (paste into `python -m forensic degrade --spec ...`)", interactive=False,
                                            buttons=["copy"], elem_id="spec"))
            page.add("lab_info", gr.Markdown("Upload an image to start.", label="Degradation summary", elem_id="lab-info"))


def _lab(page: Page) -> None:
    with gr.Accordion("Degradation lab", open=True, elem_id="lab"):
        with gr.Row():
            page.add("preset", gr.Dropdown(preset_choices(), value="none", label="Preset (applied first)", scale=2))
            page.add("compound", gr.Slider(0, 1, value=NEUTRAL.compound, step=0.1, label="Paper's compound engine: strength (0 = off)"))
            page.add("seed", gr.Number(value=0, precision=None, minimum=0, maximum=MAX_SEED, step=1, label="Seed"))
        with gr.Row():
            page.add("jpeg", gr.Slider(5, 100, value=NEUTRAL.jpeg_quality, step=1, label="JPEG quality (100 = off)", elem_id="jpeg-quality"))
            page.add("gblur", gr.Slider(0, 8, value=NEUTRAL.gblur_sigma, step=0.1, label="Gaussian blur sigma, px (0 = off)"))
            page.add("gnoise", gr.Slider(0, 100, value=NEUTRAL.gnoise_sigma, step=1, label="Gaussian noise sigma, 0-255 (0 = off)"))
        with gr.Row():
            page.add("motion", gr.Slider(1, 51, value=NEUTRAL.motion_length, step=2, label="Motion blur length, px (1 = off)"))
            page.add("angle", gr.Slider(0, 180, value=NEUTRAL.motion_angle, step=5, label="Motion blur angle, degrees"))
            page.add("resize", gr.Slider(0.1, 1, value=NEUTRAL.resize_scale, step=0.05, label="Resize factor, down and back up (1 = off)"))
        with gr.Accordion("Applied operations as JSON", open=False):
            page.add("lab_json", gr.JSON(label="Degradation details"))
        # the lab state as a link or code (webapp.labstate): a teacher prepares a demonstration
        with gr.Row(equal_height=False, elem_id="lab-link-row"):
            page.add("lab_code", gr.Textbox(label="Link to this lab state (or paste a link or code here and press Restore)",
                                            buttons=["copy"], scale=4, elem_id="lab-code", max_lines=2))
            with gr.Column(scale=1, min_width=160):
                page.add("lab_link_btn", gr.Button("Link to this lab state", size="sm", elem_id="lab-link"))
                page.add("lab_restore_btn", gr.Button("Restore", size="sm", elem_id="lab-restore"))
        page.add("lab_code_status", gr.Markdown("", elem_id="lab-code-status"))


def _needs(ready: bool, elem_id: str) -> None:
    if not ready:
        gr.Markdown(f"⚠ {NEEDS_DETECTOR}", elem_id=elem_id)


def _note(text: str) -> None:
    gr.Markdown(f"**What am I looking at?** {text}", elem_classes=["note"])


def _verdict(page: Page, ready: bool, start_explain: str) -> None:
    with gr.Row():
        info = (NEEDS_DETECTOR if not ready else None if start_explain == "fast"
                else "On this CPU, Score-CAM of this model takes minutes per image; the verdict alone takes seconds.")
        page.add("explain", gr.Radio(list(EXPLAIN_CHOICES), value=start_explain if ready else "none", label="Explanations",
                                     scale=3, info=info, interactive=ready, elem_id="explain"))
        with gr.Column(scale=1, min_width=260):  # its own column: on a phone it goes under the radio, not beside it
            page.add("vote_without_face", gr.Checkbox(False, label="Vote even without a face", elem_id="vote-without-face",
                                                      info="Trained on faces: without one, no verdict unless this is on "
                                                           "(the word then ends in \"(no face)\")."))
        page.add("analyze_btn", gr.Button("Analyze", variant="primary", scale=1, elem_id="analyze"))
    page.add("status", gr.HTML(status_html("Upload an image or click an example: it is analysed at once.", "info"),
                               elem_id="analysis-status"))
    with gr.Column(elem_id="results", elem_classes=["results"]) as results:
        page.add("results", results)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=320):
                page.add("vote", gr.HTML(elem_id="vote"))
                page.add("limits", gr.HTML(elem_id="limits"))  # what the vote cannot tell (forensic.limits)
                page.add("details", gr.HTML(elem_id="verdict"))
                page.add("provenance", gr.Markdown("**Provenance hints** (not part of the vote): analyse an image to read them.",
                                                   elem_id="provenance", elem_classes=["caption"]))
            with gr.Column(scale=2, min_width=300):
                page.add("regions_caption", gr.Markdown("**Where each stream looked**", elem_id="regions-caption", elem_classes=["caption"]))
                page.add("regions", gr.Image(label="Where each stream looked", show_label=False, format="png", interactive=False,
                                             elem_id="regions", buttons=["download", "fullscreen"]))
        with gr.Row(equal_height=False):
            for n in STREAMS:
                with gr.Column(min_width=240):
                    page.add(f"caption_{n}", gr.Markdown(f"**{STREAM_TITLES[n]}**: Score-CAM", elem_id=f"caption-{n}",
                                                         elem_classes=["caption"]))
                    page.add(f"overlay_{n}", gr.Image(label=f"{STREAM_TITLES[n]}: Score-CAM", show_label=False, format="png",
                                                      interactive=False, elem_id=f"overlay-{n}", buttons=["download", "fullscreen"]))
        gr.HTML(figures.colour_scale_html(), elem_id="colour-scale")
        with gr.Row(equal_height=False):
            with gr.Column(min_width=300):
                page.add("entropy_plot", gr.Plot(label="Attention entropy", format="png", show_label=False, elem_id="entropy-plot"))
                _note(NOTES["entropy"])
            with gr.Column(min_width=300):
                page.add("stability_plot", gr.Plot(label="Clean-vs-degraded stability", format="png", show_label=False,
                                                   elem_id="stability-plot"))
                _note(NOTES["stability"])
        with gr.Row(equal_height=False):
            with gr.Column(min_width=300):
                page.add("feat_plot", gr.Plot(label="Inter-stream feature similarity", format="png", show_label=False, elem_id="feat-plot"))
                _note(NOTES["features"])
            with gr.Column(min_width=300):
                page.add("cam_plot", gr.Plot(label="Inter-stream Score-CAM similarity", format="png", show_label=False, elem_id="cam-plot"))
                _note(NOTES["cams"])
    with gr.Row():
        page.add("report_html_file", gr.DownloadButton("Download the report (HTML)", value=None, interactive=False,
                                                       elem_id="report-html"))
        page.add("report_json_file", gr.DownloadButton("Download the report (JSON)", value=None, interactive=False,
                                                       elem_id="report-json"))
    with gr.Accordion("Full report (JSON)", open=False):
        page.add("report_json", gr.JSON(label="Report"))


def _compare(page: Page, ready: bool) -> None:
    _look_closely(page)
    gr.Markdown("### Where the streams look: clean vs degraded", elem_id="maps-heading")
    gr.Markdown("The three Score-CAM maps of the **clean upload** (top) next to those of the **lab's degraded image** "
                "(bottom), and how far each stream's map moved (cosine between the two maps: the paper's attention drift). "
                "Runs Score-CAM twice.")
    with gr.Row():
        page.add("compare_btn", gr.Button("Compare clean and degraded", variant="primary", interactive=ready, elem_id="compare"))
        _needs(ready, "compare-needs")
    page.add("compare_status", gr.HTML(status_html(
        "Set a degradation in the lab, then press **Compare** to see the clean and degraded maps side by side.", "info"),
        elem_id="compare-status"))
    with gr.Column(elem_id="compare-results", elem_classes=["results"]) as results:
        page.add("compare_results", results)
        with gr.Row(equal_height=False):
            for n in STREAMS:
                with gr.Column(min_width=240):
                    page.add(f"compare_caption_{n}", gr.Markdown(f"**{STREAM_TITLES[n]}**", elem_id=f"compare-caption-{n}",
                                                                 elem_classes=["caption"]))
                    page.add(f"clean_{n}", gr.Image(label=f"{STREAM_TITLES[n]}: clean", format="png", interactive=False,
                                                    elem_id=f"clean-{n}"))
                    page.add(f"degraded_{n}", gr.Image(label=f"{STREAM_TITLES[n]}: degraded", format="png", interactive=False,
                                                       elem_id=f"degraded-{n}"))
                    page.add(f"mapdiff_{n}", gr.Image(label=f"{STREAM_TITLES[n]}: degraded minus clean", format="png",
                                                      interactive=False, elem_id=f"mapdiff-{n}"))
        gr.HTML(figures.colour_scale_html())
        gr.HTML(figures.diverging_scale_html(), elem_id="mapdiff-scale")
        page.add("drift_plot", gr.Plot(label="Attention drift", format="png", show_label=False, elem_id="drift-plot"))
        _note(NOTES["drift"])
        with gr.Accordion("Comparison (JSON)", open=False):
            page.add("drift_json", gr.JSON(label="Comparison"))


def _look_closely(page: Page) -> None:
    # the pixels themselves, clean vs degraded: no detector needed, follows the lab like the preview
    with gr.Group(elem_id="closeup"):
        gr.Markdown("### Look closely: the pixels, clean vs degraded\n"
                    "The same small square of the clean upload and of the lab's degraded image, magnified without "
                    "smoothing (each image pixel a solid square), and their difference amplified. Follows the lab.",
                    elem_classes=["closeup-intro"])
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=300):
                page.add("closeup_where", gr.Radio(list(closeup.WHERE_CHOICES), value="centre", label="Where to look",
                                                   elem_id="closeup-where"))
                page.add("closeup_zoom", gr.Radio([list(c) for c in closeup.ZOOM_CHOICES], value=4, label="Magnification",
                                                  elem_id="closeup-zoom"))
                page.add("closeup_caption", gr.Markdown("Upload an image (or click an example) to look closely at it.",
                                                        elem_id="closeup-caption", elem_classes=["caption"]))
            with gr.Column(scale=1, min_width=240):
                page.add("closeup_where_pic", gr.Image(label="Click to choose where to look", format="png", interactive=False,
                                                       height=240, elem_id="closeup-where-pic", buttons=[]))
        with gr.Row(equal_height=False, elem_classes=["closeup-row"]):
            for key, elem in (("clean", "closeup-clean"), ("degraded", "closeup-degraded"), ("diff", "closeup-diff")):
                with gr.Column(min_width=300):
                    page.add(f"closeup_title_{key}", gr.Markdown(elem_id=f"{elem}-title", elem_classes=["caption", "closeup-title"]))
                    page.add(f"closeup_{key}", gr.Image(show_label=False, label=key, format="png", interactive=False,
                                                        elem_id=elem, elem_classes=["closeup-pic"],
                                                        buttons=["download", "fullscreen"]))
        page.add("closeup_note", gr.Markdown(elem_id="closeup-note", elem_classes=["note"]))
        page.add("closeup_point", gr.State(None))
        # one image pixel = a solid square: the browser must not smooth the magnified crops when it scales them
        # and the three pictures start at one height whatever their titles' lengths
        gr.HTML("<style>.closeup-pic img{image-rendering:pixelated} .closeup-title{min-height:2.8em}</style>", padding=False)


def _sweep(page: Page, ready: bool) -> None:
    with gr.Row():
        page.add("family", gr.Dropdown(list(FAMILY_CHOICES), value="compound", label="Degradation family (clean to strongest)"))
        page.add("sweep_btn", gr.Button("Run sweep", variant="primary", interactive=ready, elem_id="sweep"))
        _needs(ready, "sweep-needs")
    page.add("sweep_status", gr.HTML(elem_id="sweep-status"))
    page.add("sweep_plot", gr.Plot(label="P(fake), attention entropy and stability against strength", format="png",
                                   show_label=False, elem_id="sweep-plot"))
    _note(NOTES["sweep"])
    with gr.Accordion("Sweep rows (JSON)", open=False):
        page.add("sweep_json", gr.JSON(label="Rows"))
    # the attention film-strip: the same family, five levels, each stream's map (for projecting in class)
    with gr.Row():
        page.add("filmstrip_btn", gr.Button("Film-strip (attention at five levels)", interactive=ready,
                                            elem_id="filmstrip"))
    page.add("filmstrip_plot", gr.Plot(label="Attention film-strip", format="png", show_label=False,
                                       elem_id="filmstrip-plot"))
    page.add("filmstrip_png", gr.File(label="The film-strip as PNG", interactive=False, elem_id="filmstrip-png"))
    _note("Film-strip: each stream's fast Score-CAM on the clean upload and at five levels of the family chosen above "
          "(JPEG: quality 90, 70, 50, 30, 10; others: strength 0.2 to 1), each with its map cosine to the clean map "
          "(1 = the stream still looks at the same places).")


def _batch(page: Page, ready: bool) -> None:
    gr.Markdown(f"Verdicts for up to {MAX_FILES} images at once, as uploaded (the lab is not applied); a file that cannot "
                "be read gets its reason in the *error* column. The CSV has the columns of "
                "`python -m forensic predict --format csv`.")
    page.add("batch_files", gr.File(file_count="multiple", file_types=["image"], type="filepath", label="Images",
                                    elem_id="batch-files"))
    with gr.Row():
        page.add("batch_btn", gr.Button("Analyze all", variant="primary", interactive=ready, elem_id="batch"))
        _needs(ready, "batch-needs")
    page.add("batch_status", gr.HTML(elem_id="batch-status"))
    page.add("batch_table", gr.HTML(elem_id="batch-table"))
    page.add("batch_csv", gr.File(label="The table as CSV", interactive=False, elem_id="batch-csv"))
