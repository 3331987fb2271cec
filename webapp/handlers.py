"""What the app's buttons and sliders do: :class:`Handlers` holds the detector and turns each request into a view.

Every handler returns a view (:mod:`webapp.views`) whose field names are those of the page's
components (:class:`webapp.layout.Page`); ``app.py`` only wires them. Two flavours:

- API handlers (``/analyze``, ``/sweep``, ``/compare``, ``/report``, ``/analyze_batch``) raise a
  ``gr.Error`` in one line for a bad request, as a client expects;
- the page's handlers (``*_in_place``) never raise: the message goes in place, in the panel's
  status line, and the result panels are left empty (no red "Error" pill on each).

The lab's handlers take its controls as one :class:`webapp.lab.LabSettings` (``app.py`` builds it from
the values Gradio passes one by one). Each result says which image it describes, and :meth:`Handlers.lab_changed` marks results that no
longer match the lab as out of date (cheap: nothing is recomputed until Analyze is pressed).
All of it runs without a server: tests call these methods directly.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import gradio as gr

from forensic.degrade import SpecError, check_seed
from forensic import viz
from forensic.explain import method_names
from forensic.images import ImageError
from forensic.limits import limits_of
from forensic.provenance import read_provenance

from . import batch as batch_table
from . import closeup
from . import render
from .closeup import CloseupView
from .files import ScratchDir
from .lab import LAB_MAX_PIXELS, LabSettings, preview
from .report_file import Chart, Picture, report_html
from .runtime import decode_upload, on_gpu, on_model_thread, user_error
from .video import VideoTab
from .views import (
    NOTES,
    AnalysisView,
    BatchView,
    CompareView,
    SweepView,
    analysis_view,
    compare_view,
    face_only_view,
    results_class,
    status_html,
)

__all__ = ["Handlers", "checked_lab", "checked_seed"]

STREAMS = render.STREAMS


class Handlers:
    """The app's behaviour around one detector (or none: ``error`` says why).

    Args:
        detector: a loaded :class:`forensic.pipeline.Detector`, or None.
        error: the user-facing reason there is no detector.
        scratch: where report and CSV files are written before Gradio copies them.
        examples: the example images, in the gallery's order.
        max_pixels: larger uploads are analysed on a copy scaled down to this many pixels (the lab's
            bound, so the preview is what the streams see; the report's notes say so).
    """

    def __init__(self, detector: Any | None, *, error: str | None = None, scratch: ScratchDir | None = None,
                 examples: Sequence[str] = (), max_pixels: int = LAB_MAX_PIXELS) -> None:
        self.detector = detector
        self.max_pixels = max_pixels
        self.examples = list(examples)
        self.error = error if detector is None else None
        if detector is None and self.error is None:
            self.error = "No detector was given to build_demo()."
        self.scratch = scratch or ScratchDir()
        self.threshold = float(detector.config.vote.threshold) if detector is not None else 0.5
        self.video = VideoTab(detector, error=self.error, scratch=self.scratch)  # the Video tab (webapp.video)

        # the heavy work: one function each, run on the model thread (GPU-attached on ZeroGPU)
        bound = max_pixels

        @on_gpu
        def run_analysis(image, spec, seed, explain, progress):
            return detector.analyze(image, degradation=spec, seed=seed, explain=explain, max_pixels=bound,
                                    progress=lambda stage, frac: progress(frac, desc=stage))

        @on_gpu
        def run_pair(image, spec, seed, explain, progress):
            # one paired work item: the clean image is analysed once, as the degraded one's twin
            degraded = detector.analyze(image, degradation=spec, seed=seed, explain=explain, stability=True, pair=True,
                                        max_pixels=bound, progress=lambda stage, frac: progress(frac, desc=stage))
            return degraded.twin, degraded

        @on_gpu
        def run_sweep(pixels, family, seed, progress):
            from forensic.sweep import robustness_sweep

            return robustness_sweep(detector, pixels, family=family, seed=seed,
                                    progress=lambda stage, frac: progress(frac, desc=stage))

        @on_gpu
        def run_filmstrip(pixels, family, seed, progress):
            from forensic.sweep import attention_filmstrip

            progress(0.1, desc=f"{family}: the clean image and five levels, with fast Score-CAM")
            return attention_filmstrip(detector, pixels, family, method="fast", seed=seed)

        @on_gpu
        def run_batch(paths, progress):
            rows = []
            for i, (path, outcome) in enumerate(detector.analyze_many(paths, batch_size=8, max_pixels=bound)):
                rows.append(batch_table.batch_row(path, outcome, preset=detector.preset, untrained=detector.untrained))
                progress((i + 1) / len(paths), desc=f"{i + 1} of {len(paths)}")
            return rows

        self._run_analysis, self._run_pair, self._run_sweep, self._run_batch = run_analysis, run_pair, run_sweep, run_batch
        self._run_filmstrip = run_filmstrip

    # -------------------------------------------------------------------------------- lab
    def degrade(self, image, lab: LabSettings):
        """The degraded image, the spec (for `python -m forensic degrade`), a summary and the details as JSON.

        A bad upload or setting is *returned* (no image, the message in the summary and as ``error`` in
        the JSON) so that the page never keeps showing the previous image's preview.
        """
        if not image:
            return None, "", "Upload an image to start.", None
        try:
            lab = checked_lab(lab)
            decoded = decode_upload(image, self.max_pixels)
            result = preview(decoded.pixels, lab, input_size=decoded.scaled_from)
        except (gr.Error, SpecError, ValueError) as exc:
            # shown in place (no toast: Gradio's image input fires change twice for a broken file)
            message = exc.message if isinstance(exc, gr.Error) else user_error(exc).message
            return None, "", f"⚠ **{message}**", {"error": message}
        info = render.jsonable({**result.to_dict(), "size": list(decoded.scaled_from or (decoded.width, decoded.height)),
                                "notes": list(decoded.notes)})
        return result.image, result.spec or "", render.lab_markdown(result), info

    def lab_changed(self, image, lab: LabSettings, analysed=None, compared=None, swept=None):
        """Marks the results that no longer describe the lab's image as out of date (nothing is recomputed).

        Returns the analysis status and results class, the comparison's, the sweep's status, and the two report
        download buttons (off while the report describes another image than the lab's).
        """
        try:
            lab = checked_lab(lab)
        except gr.Error:
            return (gr.skip(),) * 7
        spec = lab.spec()
        now = render.describe_lab(spec, lab.seed)
        out = []
        for done, what in ((analysed, "Analyze"), (compared, "Compare")):
            if not image or not done:
                out += [gr.skip(), gr.skip()]
            elif _same(done, spec, lab.seed):
                out += [done["status"], results_class(False)]
            else:
                out += [status_html(f"⚠ **Out of date**: these results describe {done['describes']}; the lab now shows "
                                    f"{now}. Press **{what}** to update them.", "stale"), results_class(True)]
        out.append(self._sweep_status(swept, spec, lab.seed, bool(image)))
        if not image or not analysed:
            out += [gr.skip(), gr.skip()]
        else:  # the report files describe the analysed image: no download of an out-of-date report
            out += [gr.update(interactive=bool(analysed.get("files")) and _same(analysed, spec, lab.seed))] * 2
        return tuple(out)

    def vote_setting_changed(self, vote_without_face, analysed=None):
        """"Vote even without a face" changed: a verdict it decides (no face found, trained weights) is out of date."""
        if not analysed or not analysed.get("face_matters"):
            return gr.skip()
        if bool(vote_without_face) == analysed.get("vote_without_face"):
            return analysed["status"]
        return status_html("⚠ **Out of date**: no face was found, and the verdict was given "
                           f"{'without' if vote_without_face else 'with'} \"Vote even without a face\". Press **Analyze** "
                           "to update it.", "stale")

    # -------------------------------------------------------------------------------- analysis
    def analyze(self, image, lab: LabSettings, explain="fast", vote_without_face=False, progress=gr.Progress()) -> AnalysisView:
        """The vote, each stream's table row and region, three Score-CAM overlays, the figures and the report JSON.
        ``vote_without_face``: give the vote even when no face was found (:mod:`forensic.verdict`).

        Raises:
            gr.Error: a bad upload or setting, in one line.
        """
        return self._analysis(image, lab, explain, progress, files=False, vote_without_face=vote_without_face)

    def analyze_in_place(self, image, lab: LabSettings, explain="fast", vote_without_face=False,
                         progress=gr.Progress()) -> AnalysisView:
        """The page's Analyze: never raises. The explanation choice is honoured (``none`` runs no Score-CAM).

        No image: a prompt, every panel empty. A bad upload or setting: its reason in the status line.
        The report's download buttons are enabled with its files, or disabled.
        """
        if not image:
            view = AnalysisView(status=status_html("⚠ **No image**: upload one (or click an example) first, then Analyze.",
                                                   "error"), results=results_class(False))
        else:
            try:
                view = self._analysis(image, lab, explain, progress, files=self.detector is not None,
                                      vote_without_face=vote_without_face)
            except gr.Error as exc:
                view = AnalysisView(status=status_html(f"⚠ **{exc.message}**", "error"), results=results_class(False))
        return replace(view, **{k: gr.update(value=getattr(view, k), interactive=getattr(view, k) is not None)
                                for k in ("report_html_file", "report_json_file")})

    def upload_in_place(self, image, lab: LabSettings, explain="fast", vote_without_face=False,
                        progress=gr.Progress()) -> AnalysisView:
        """A new upload (or example) is analysed at once, as Analyze would; a cleared input clears the results."""
        if not image:
            return replace(AnalysisView(status=status_html("Upload an image or click an example: it is analysed at once.", "info"),
                                        results=results_class(False)),
                           report_html_file=gr.update(value=None, interactive=False),
                           report_json_file=gr.update(value=None, interactive=False))
        return self.analyze_in_place(image, lab, explain, vote_without_face, progress)

    def report(self, image, lab: LabSettings, explain="fast", vote_without_face=False, progress=gr.Progress()) -> str:
        """``/report``: the analysis as one self-contained HTML file (its path)."""
        if self.detector is None:
            raise gr.Error(self.error, title="No detector loaded", print_exception=False)
        view = self._analysis(image, lab, explain, progress, files=True, vote_without_face=vote_without_face)
        return view.report_html_file

    def _analysis(self, image, lab: LabSettings, explain, progress, *, files: bool,
                  vote_without_face: bool = False) -> AnalysisView:
        lab = checked_lab(lab)
        spec = lab.spec()
        started = time.perf_counter()  # the server's whole time: decoding and scaling the upload count too
        decoded = decode_upload(image, self.max_pixels)
        try:
            if self.detector is None:
                return self._face_only(decoded, lab, spec)
            report = on_model_thread(self._run_analysis, decoded, spec, lab.seed, explain or "fast", progress)
        except (ImageError, SpecError, ValueError) as exc:
            raise user_error(exc) from exc
        # the pipeline saw the decoded pixels: the hints come from the uploaded file (never part of the vote)
        report = replace(report, provenance=read_provenance(image), vote_without_face=bool(vote_without_face))
        view = analysis_view(report, threshold=self.threshold,
                             limits=render.limits_html(limits_of(self.detector.config, report)))
        # whether "Vote even without a face" changes this verdict (Handlers.vote_setting_changed reads it)
        face_matters = report.face.mode == "no-face" and "face" in report.streams and not report.untrained
        view = replace(view, analysed={**view.analysed, "face_matters": face_matters, "vote_without_face": bool(vote_without_face)})
        view = replace(view, details=render.details_html(report, waited=render.Waited(
            time.perf_counter() - started, decoded.scaled_from)))
        if files:
            view = self._with_files(view, report, Path(image).name)
        return view

    def _with_files(self, view: AnalysisView, report, name: str) -> AnalysisView:
        about = render.subject(report)
        pictures = [Picture(f"The upload{' (clean)' if report.degradation else ''}", report.original if report.original is not None
                            else report.image)]
        if report.degradation is not None:
            pictures.append(Picture(f"What the streams saw: {about}", report.image))
        pictures.append(Picture(view.regions_caption, view.regions))
        pictures += [Picture(getattr(view, f"caption_{n}"), getattr(view, f"overlay_{n}"), overlay=True)
                     for n in STREAMS if n in report.streams]
        charts = [Chart("Attention entropy", view.entropy_plot, NOTES["entropy"]),
                  Chart("Feature stability", view.stability_plot, NOTES["stability"]),
                  Chart("Inter-stream feature similarity", view.feat_plot, NOTES["features"]),
                  Chart("Inter-stream Score-CAM similarity", view.cam_plot, NOTES["cams"])]
        stem = Path(name).stem or "image"
        text = report_html(title=f"{name}: {about}", model=self.detector.describe(), untrained=report.untrained,
                           vote=view.vote, limits=view.limits, details=view.details, pictures=pictures, charts=charts,
                           record=view.report_json,
                           md=render.md_inline)
        html_path = self.scratch.write(f"{stem}_report.html", text)
        json_path = self.scratch.write(f"{stem}_report.json", json.dumps(view.report_json, indent=2))
        return replace(view, report_html_file=str(html_path), report_json_file=str(json_path),
                       analysed={**view.analysed, "files": True})

    def _face_only(self, decoded, lab: LabSettings, spec: str | None) -> AnalysisView:
        # no weights: show what the face detector finds, which needs no model weights
        from forensic.faces import get_default_detector

        pixels = preview(decoded.pixels, lab).image
        face = on_model_thread(get_default_detector().analyze, pixels)
        return face_only_view(pixels, face, spec=spec, seed=lab.seed, error=self.error)

    # -------------------------------------------------------------------------------- clean vs degraded
    def compare(self, image, lab: LabSettings, explain="fast", progress=gr.Progress()) -> CompareView:
        """The three overlays of the clean image next to those of the degraded one, with each stream's map cosine.

        Raises:
            gr.Error: no detector, no degradation set in the lab, or a bad upload or setting.
        """
        if self.detector is None:
            raise gr.Error(self.error, title="No detector loaded", print_exception=False)
        lab = checked_lab(lab)
        spec = lab.spec()
        if spec is None:
            raise gr.Error("Nothing to compare: the lab applies no degradation. Move a slider or pick a preset first.",
                           title="No degradation", print_exception=False)
        decoded = decode_upload(image, self.max_pixels)
        method = explain if explain in method_names() else "fast"
        try:
            clean, degraded = on_model_thread(self._run_pair, decoded, spec, lab.seed, method, progress)
        except (ImageError, SpecError, ValueError) as exc:
            raise user_error(exc) from exc
        return compare_view(clean, degraded, spec=spec, seed=lab.seed, method=method, asked=explain or "none")

    def compare_in_place(self, image, lab: LabSettings, explain="fast", progress=gr.Progress()) -> CompareView:
        """The page's Compare: the message in place instead of an error."""
        if not image:
            return CompareView(compare_status=status_html("⚠ **No image**: upload one first.", "error"),
                               compare_results=results_class(False))
        try:
            return self.compare(image, lab, explain, progress)
        except gr.Error as exc:
            return CompareView(compare_status=status_html(f"⚠ **{exc.message}**", "error"), compare_results=results_class(False))

    # -------------------------------------------------------------------------------- look closely (no model)
    def look_closely(self, image, lab: LabSettings, where="centre", zoom=4, point=None) -> CloseupView:
        """The Compare tab's close-up of the clean upload and the lab's degraded image (never raises)."""
        return closeup.look_closely(image, lab, where, zoom, point, max_pixels=self.max_pixels)

    def closeup_click(self, image, evt: gr.SelectData):
        """A click on the close-up's small picture: the point in the image's pixels, and "a point I click"."""
        return closeup.clicked_point(image, evt.index, max_pixels=self.max_pixels), closeup.WHERE_CHOICES[2]

    # -------------------------------------------------------------------------------- sweep
    def sweep(self, image, family, seed, progress=gr.Progress()) -> SweepView:
        """``/sweep``: one degradation family at strengths 0, 0.1, ..., 1 *from the clean upload*.

        Raises:
            gr.Error: no detector, or a bad upload or seed.
        """
        if self.detector is None:
            raise gr.Error(self.error, title="No detector loaded", print_exception=False)
        seed = checked_seed(seed)
        decoded = decode_upload(image, self.max_pixels)
        try:
            # the sweep holds 12 copies of the image: on the lab's bounded copy, like every other analysis here
            result = on_model_thread(self._run_sweep, decoded.pixels, family or "compound",
                                     seed, progress)
        except (SpecError, ValueError) as exc:
            raise user_error(exc) from exc
        title = (f"Robustness sweep from the clean upload: {result.family}, seed {result.seed}"
                 + ("  [UNTRAINED weights: random numbers]" if self.detector.untrained else ""))
        swept = {"family": result.family, "seed": result.seed}
        data = {**result.to_dict(), "swept_from": "the clean upload (the lab's settings are not applied)"}
        return SweepView(sweep_status=self._sweep_status(swept, None, seed, True, fresh=True),
                         sweep_plot=viz.sweep_figure(result.rows, title=title), sweep_json=render.jsonable(data), swept=swept)

    def sweep_in_place(self, image, family, seed, spec="", progress=gr.Progress()) -> SweepView:
        """The page's sweep: the message in place instead of an error. ``spec`` is the lab's, to say it is not applied."""
        if not image:
            return SweepView(sweep_status=status_html("⚠ **No image**: upload one first.", "error"))
        try:
            view = self.sweep(image, family, seed, progress)
        except gr.Error as exc:
            return SweepView(sweep_status=status_html(f"⚠ **{exc.message}**", "error"))
        return replace(view, sweep_status=self._sweep_status(view.swept, spec or None, view.swept["seed"], True, fresh=True))

    def filmstrip_in_place(self, image, family, seed, progress=gr.Progress()) -> SweepView:
        """The Sweep tab's film-strip: each stream's fast Score-CAM on the clean upload and at five levels of
        ``family`` (JPEG: quality 90, 70, 50, 30, 10), each with its map cosine to the clean map, and the
        figure as a PNG file. Messages in place."""
        if not image:
            return SweepView(sweep_status=status_html("⚠ **No image**: upload one first.", "error"))
        try:
            if self.detector is None:
                raise gr.Error(self.error, title="No detector loaded", print_exception=False)
            seed = checked_seed(seed)
            decoded = decode_upload(image, self.max_pixels)
            try:
                strip = on_model_thread(self._run_filmstrip, decoded.pixels, family or "jpeg", seed, progress)
            except (SpecError, ValueError) as exc:
                raise user_error(exc) from exc
        except gr.Error as exc:
            return SweepView(sweep_status=status_html(f"⚠ **{exc.message}**", "error"))
        levels = ", ".join(viz.param_text(r["param"]) for r in strip.rows[1:])
        label = strip.rows[0]["param"]["label"]
        title = (f"Where each stream looks as {label} degrades: {strip.family}, seed {strip.seed}"
                 + ("  [UNTRAINED weights: random numbers]" if self.detector.untrained else ""))
        fig = viz.filmstrip_figure(strip, title=title)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        png = self.scratch.write(f"filmstrip-{strip.family}-seed{strip.seed}.png", buffer.getvalue())
        text = (f"✓ Film-strip from the **clean upload**: {strip.family} at {label} {levels}, seed {strip.seed}, "
                f"{strip.method} Score-CAM; each panel gives its map's cosine to the clean map (1 = the same map).")
        return SweepView(sweep_status=status_html(text), filmstrip_plot=fig, filmstrip_png=str(png))

    def _sweep_status(self, swept: dict | None, spec: str | None, seed: int, has_image: bool, *, fresh: bool = False) -> str:
        lab = (f" The lab's settings above (`{spec}`) are **not** applied here." if spec
               else " The lab's settings above are not applied here.")
        if not swept or not has_image:
            return status_html(f"The sweep starts from the **clean upload** and applies only the family chosen here, at "
                               f"strengths 0, 0.1, ..., 1, with the lab's seed (now {seed}).{lab}", "info")
        if swept["seed"] != seed and not fresh:
            return status_html(f"⚠ **Out of date**: this sweep used seed {swept['seed']}; the lab's seed is now {seed}. "
                               f"Press **Run sweep** to update it.{lab}", "stale")
        return status_html(f"✓ Swept from the **clean upload**: {swept['family']} at strengths 0 to 1, seed {swept['seed']}."
                           f"{lab}")

    # -------------------------------------------------------------------------------- batch
    def analyze_batch(self, files, progress=gr.Progress()) -> str:
        """``/analyze_batch``: a list of image files in, a CSV file out (one row per file, in order).

        Raises:
            gr.Error: no detector, no files, or more than :data:`webapp.batch.MAX_FILES`.
        """
        rows = self._batch_rows(files, progress)
        return str(self.scratch.write("verdicts.csv", batch_table.to_csv(rows)))

    def batch_in_place(self, files, progress=gr.Progress()) -> BatchView:
        """The page's batch: a table, the CSV, and a status line (errors in place)."""
        try:
            rows = self._batch_rows(files, progress)
        except gr.Error as exc:
            return BatchView(batch_status=status_html(f"⚠ **{exc.message}**", "error"))
        text = batch_table.status_text(rows, untrained=self.detector.untrained)
        path = self.scratch.write("verdicts.csv", batch_table.to_csv(rows))
        return BatchView(batch_status=status_html(text, "stale" if any(r["error"] for r in rows) else "fresh"),
                         batch_table=batch_table.table_html(rows), batch_csv=str(path))

    def _batch_rows(self, files, progress) -> list[dict]:
        if self.detector is None:
            raise gr.Error(self.error, title="No detector loaded", print_exception=False)
        paths = [getattr(f, "name", f) for f in (files or [])]
        if not paths:
            raise gr.Error("Add one or more image files first.", title="No files", print_exception=False)
        if len(paths) > batch_table.MAX_FILES:
            raise gr.Error(f"{len(paths)} files: at most {batch_table.MAX_FILES} per batch; use "
                           "`python -m forensic predict` for more.", title="Too many files", print_exception=False)
        return on_model_thread(self._run_batch, [str(p) for p in paths], progress)

    # -------------------------------------------------------------------------------- a new upload
    def pick_example(self, evt: gr.SelectData) -> str:
        """The example clicked in the gallery, as the image input's new value."""
        return self.examples[evt.index]

    def clear_compare(self, image) -> CompareView:
        """A new (or cleared) upload: the comparison described the old image."""
        return CompareView(compare_status=status_html("Set a degradation in the lab, then press **Compare** to see the "
                                                      "clean and degraded maps side by side.", "info"),
                           compare_results=results_class(False))

    def clear_sweep(self, image, seed=0) -> SweepView:
        """A new (or cleared) upload: the sweep described the old image."""
        try:
            seed = checked_seed(seed)
        except gr.Error:
            seed = 0
        return SweepView(sweep_status=self._sweep_status(None, None, seed, bool(image)))


def checked_lab(lab: LabSettings) -> LabSettings:
    """``lab`` with its seed checked (:func:`checked_seed`), or a ``gr.Error`` in one line."""
    return replace(lab, seed=checked_seed(lab.seed))


def checked_seed(seed) -> int:
    """The seed, checked before any work (0..2**32-1), or a ``gr.Error`` in one line.

    A seed past 64 bits used to run a whole analysis, then fail in Gradio's JSON output.
    """
    try:
        return check_seed(0 if seed is None else seed)
    except ValueError as exc:
        raise user_error(exc) from None


def _same(done: dict, spec: str | None, seed: int) -> bool:
    return done.get("spec") == spec and (spec is None or done.get("seed") == seed)
