"""Per-image evaluation with resume: batched stream passes, and Score-CAM per image.

Two kinds of records, both keyed by (image key, spec, degradation seed) so that every family's
clean level is evaluated once and shared:

- **pass rows** (:func:`run_passes`, one stream of work items through :meth:`Detector.run`): per stream
  P(fake), CLS-attention entropy and the cosine between the pooled feature of the degraded and of
  the clean image; the vote; the inter-stream cosine of the DINOv2 CLS features. Robustness,
  stability, entropy and complementarity all read these.
- **CAM rows** (:func:`run_cams`, one stream of explained work items, one per image and
  condition, keyed also by the CAM method): per stream Score-CAM entropy, mass inside a reference
  box, centroid and its shift from the clean map, correlation with the clean map, deletion and
  insertion AUC of the map and of a random map, and a fast map's fidelity estimate; the
  inter-stream cosine of the maps. The clean maps (and all maps of a few figure images) are kept, reduced, in
  ``.npz`` files, so a resumed run can still compare with them.

Each image is degraded with its own seed (:func:`analysis.data.image_seed`), the same at every
strength, so a sweep changes only the strength.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from forensic.metrics import pearson
from forensic.pipeline import WorkItem

from .conditions import CLEAN, Condition
from .data import AnalysisSample, image_seed
from .maps import box_mask, centroid, centroid_shift, mass_in_box, reduce_map
from .store import RowStore

__all__ = [
    "Progress",
    "ProgressFactory",
    "RunStats",
    "PASS_KEY",
    "CAM_KEY",
    "pass_store",
    "cam_store",
    "pass_key",
    "cam_key",
    "box_ref",
    "cam_method_label",
    "run_passes",
    "run_cams",
    "load_maps",
    "pair_name",
    "work_item",
]

log = logging.getLogger(__name__)

PASS_KEY = ("path", "spec", "seed")
CAM_KEY = ("path", "spec", "seed", "method", "box_ref")


class Progress(Protocol):
    """What a progress bar needs to offer (``tqdm`` does)."""

    def update(self, n: int = 1) -> Any: ...

    def close(self) -> Any: ...


#: makes a progress bar from a description and a total
ProgressFactory = Callable[[str, int], Progress]


class _NoProgress:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _no_progress(desc: str, total: int) -> Progress:
    return _NoProgress()


@dataclass(frozen=True)
class RunStats:
    """What a run did: rows computed now, rows found done, rows that failed (kept with their error)."""

    computed: int
    skipped: int
    failed: int


def pass_store(folder: Path) -> RowStore:
    return RowStore(folder / "passes.jsonl", key_fields=PASS_KEY)


def cam_store(folder: Path) -> RowStore:
    return RowStore(folder / "cams.jsonl", key_fields=CAM_KEY)


def _seed_of(sample: AnalysisSample, spec: str, seed: int) -> int | None:
    return None if spec == CLEAN else image_seed(sample.key, seed)


def pass_key(sample: AnalysisSample, spec: str, seed: int) -> tuple:
    """The key of a pass row: (image key, spec, degradation seed or None when clean)."""
    return (sample.key, spec, _seed_of(sample, spec, seed))


def box_ref(box: Sequence[float] | None) -> str:
    """How the reference box is named in CAM keys: ``face`` (the clean image's face box) or ``x0,y0,x1,y1``."""
    return "face" if box is None else ",".join(f"{float(v):g}" for v in box)


def cam_method_label(method: str, groups: int | None = None) -> str:
    """The method as recorded: ``fast``, ``exact``, or ``fast/g<K>`` for a method that groups channels, with K groups."""
    from forensic.explain.methods import get_method

    return f"{method}/g{int(groups)}" if groups is not None and "n_groups" in get_method(method).options else method


def cam_key(sample: AnalysisSample, spec: str, seed: int, method: str, box: Sequence[float] | None = None) -> tuple:
    """The key of a CAM row: a pass key, the method label (see :func:`cam_method_label`) and the reference box (:func:`box_ref`)."""
    return (*pass_key(sample, spec, seed), method, box_ref(box))


def pair_name(a: str, b: str) -> str:
    """How a stream pair is named in records and tables: ``texture|face``."""
    return f"{a}|{b}"


def _pairs(matrix) -> dict[str, float]:
    names = matrix.names
    return {pair_name(names[i], names[j]): float(matrix.values[i, j]) for i in range(len(names)) for j in range(i + 1, len(names))}


def _specs(conditions: Iterable[Condition]) -> list[str]:
    out = [CLEAN]
    for c in conditions:
        if c.spec not in out:
            out.append(c.spec)
    return out


def _base_row(sample: AnalysisSample, key: tuple, fields: Sequence[str]) -> dict[str, Any]:
    row = dict(zip(fields, key))
    row["label"] = sample.label
    return row


def _error_row(sample: AnalysisSample, key: tuple, fields: Sequence[str], exc: BaseException) -> dict[str, Any]:
    row = _base_row(sample, key, fields)
    row["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    return row


# ------------------------------------------------------------------------------------------- passes
def _pass_row(sample: AnalysisSample, key: tuple, report) -> dict[str, Any]:
    row = _base_row(sample, key, PASS_KEY)
    clean = report.degradation is None  # the stability reference itself: cosine 1 by definition
    row.update(
        error=None,
        prob_fake=float(report.prob_fake),
        face_mode=report.face.mode,
        streams={
            name: {
                "prob_fake": float(s.prob_fake),
                "attention_nats": s.attention.nats if s.attention else None,
                "attention_max": s.attention.max_nats if s.attention else None,
                "stability": 1.0 if clean else s.stability,
            }
            for name, s in report.streams.items()
        },
        cls_cosine=_pairs(report.feature_similarity) if report.feature_similarity is not None else {},
    )
    return row


def work_item(sample: AnalysisSample, spec: str, seed: int, **fields: Any) -> WorkItem:
    """The work item of one (sample, condition): the file, degraded with the sample's own seed."""
    degraded = spec != CLEAN
    return WorkItem(sample.path, degradation=spec if degraded else None, seed=image_seed(sample.key, seed) if degraded else 0,
                    key=("analysis", sample.key), **fields)


def run_passes(
    detector,
    samples: Sequence[AnalysisSample],
    conditions: Sequence[Condition],
    store: RowStore,
    *,
    seed: int,
    batch_size: int = 8,
    progress: ProgressFactory | None = None,
) -> RunStats:
    """Evaluates every (sample, condition) not yet in ``store``, ``batch_size`` images at a time.

    Every pass is one work item of one stream through :meth:`Detector.run` (sample by sample, the
    clean image first), with stability against the clean image: the pipeline analyses each
    image's clean twin once, in the same batches, even when its own row is already stored. Rows
    are appended as results come, a batch at a time.
    """
    specs = _specs(conditions)
    todo = [(s, sp) for s in samples for sp in specs if not store.done(pass_key(s, sp, seed))]
    skipped = len(samples) * len(specs) - len(todo)
    stats = {"computed": 0, "failed": 0}
    bar = (progress or _no_progress)("stream passes", len(todo))
    rows: list[dict[str, Any]] = []

    def save() -> None:
        bad = sum(r.get("error") is not None for r in rows)
        stats["computed"] += len(rows) - bad
        stats["failed"] += bad
        bar.update(store.append(rows))
        rows.clear()

    items = (((s, sp), work_item(s, sp, seed, stability=True)) for s, sp in todo)
    try:
        for (s, spec), result in detector.run(items, batch_size=batch_size):
            key = pass_key(s, spec, seed)
            if isinstance(result, Exception):
                log.warning("cannot analyse %s with %s: %s", s.path, spec, result)
                rows.append(_error_row(s, key, PASS_KEY, result))
            else:
                rows.append(_pass_row(s, key, result))
            if len(rows) >= batch_size:
                save()
        save()
    finally:
        bar.close()
    log.info("stream passes: %d computed, %d already done, %d failed", stats["computed"], skipped, stats["failed"])
    return RunStats(computed=stats["computed"], skipped=skipped, failed=stats["failed"])


# ------------------------------------------------------------------------------------------- CAMs
def _maps_file(folder: Path, key: tuple) -> Path:
    digest = hashlib.sha1(json.dumps(list(key)).encode()).hexdigest()[:20]
    return folder / f"{digest}.npz"


def _save_maps(path: Path, maps: dict[str, np.ndarray], image_size: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")  # written whole, then renamed: never half a file
    np.savez_compressed(tmp, image_size=np.asarray(image_size), **{k: v.astype(np.float16) for k, v in maps.items()})
    tmp.replace(path)


def load_maps(folder: Path, key: tuple) -> tuple[dict[str, np.ndarray], tuple[int, int]] | None:
    """The reduced maps stored for a CAM key, and the image (w, h); None if not stored."""
    path = _maps_file(folder, key)
    if not path.is_file():
        return None
    with np.load(path) as data:
        size = tuple(int(v) for v in data["image_size"])
        maps = {k: data[k].astype(np.float32) for k in data.files if k != "image_size"}
    return maps, (size[0], size[1])


@dataclass
class _CleanReference:
    maps: dict[str, np.ndarray]
    centroids: dict[str, tuple[float, float]]
    box: tuple[float, float, float, float] | None
    box_source: str | None


def _cam_row(
    sample: AnalysisSample,
    key: tuple,
    report,
    maps: dict[str, np.ndarray],
    clean: _CleanReference,
    faithful: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    w, h = report.image_size
    streams = {}
    for name, s in report.streams.items():
        m = maps[name]
        c = centroid(m)
        mask = None if clean.box is None else box_mask(m.shape, clean.box, (w, h))
        fidelity = s.cam.fidelity if s.cam is not None else None
        streams[name] = {
            **(faithful or {}).get(name, {}),
            "cam_fidelity": None if fidelity is None else fidelity.expected_pearson,
            "cam_fidelity_low": None if fidelity is None else fidelity.low_pearson,
            "prob_fake": float(s.prob_fake),
            "cam_nats": s.cam_entropy.nats if s.cam_entropy else None,
            "cam_max": s.cam_entropy.max_nats if s.cam_entropy else None,
            "mass_in_box": None if mask is None else mass_in_box(m, mask),
            "box_fraction": None if mask is None else float(mask.mean()),
            "centroid_x": c[0],
            "centroid_y": c[1],
            "centroid_shift": centroid_shift(c, clean.centroids[name]),
            "clean_corr": pearson(m, clean.maps[name]),
            "forward_passes": s.cam.forward_passes if s.cam else None,
        }
    row = _base_row(sample, key, CAM_KEY)
    row.update(
        error=None,
        prob_fake=float(report.prob_fake),
        face_mode=report.face.mode,
        box=None if clean.box is None else [float(v) for v in clean.box],
        box_source=clean.box_source,
        streams=streams,
        cam_cosine=_pairs(report.cam_similarity) if report.cam_similarity is not None else {},
        seconds=float(report.timings.get(f"explain_{report.explain}", 0.0)),
    )
    return row


def _maps_and_faithfulness(detector, report, faithfulness_steps: int):
    """An explained report's reduced maps and (``faithfulness_steps`` > 0) each stream's deletion and
    insertion areas and those of a random map (:mod:`forensic.explain.faithfulness`)."""
    maps = {name: reduce_map(s.cam_image) for name, s in report.streams.items()}
    faithful = _faithfulness(detector, report, faithfulness_steps) if faithfulness_steps > 0 else {}
    return maps, faithful


def _faithfulness(detector, report, steps: int) -> dict[str, dict[str, Any]]:
    """Per stream: deletion and insertion AUC of its Score-CAM over its input, and of a random map (seeded)."""
    from forensic.explain.faithfulness import map_faithfulness, stream_score_fn
    from forensic.streams import to_tensor

    out = {}
    for name, s in report.streams.items():
        if s.cam is None:
            continue
        x = to_tensor(s.input.pixels, detector.config.stream(name))
        result = map_faithfulness(
            stream_score_fn(detector.model, name), x, s.cam.input_map, grid=s.cam.grid_map.shape, steps=steps, random_maps=1, seed=0,
        )
        out[name] = {k: v for k, v in result.to_dict().items() if k != "steps"}
    return out


def run_cams(
    detector,
    samples: Sequence[AnalysisSample],
    conditions: Sequence[Condition],
    store: RowStore,
    *,
    seed: int,
    method: str = "fast",
    maps_dir: Path,
    box: Sequence[float] | None = None,
    keep_maps_for: Iterable[str] = (),
    cam_groups: int | None = None,
    progress: ProgressFactory | None = None,
    faithfulness_steps: int = 8,
) -> RunStats:
    """Score-CAM of every (sample, condition) not yet in ``store``: one stream of explained work items.

    Each image's clean map (the reference) comes first, from the store or computed; its degraded
    copies follow in the same stream (:meth:`Detector.run`), so their passes share batches.

    Args:
        detector: the :class:`forensic.pipeline.Detector`.
        samples: the images.
        conditions: the degradations (the clean image is always added: it is the reference).
        store: the CAM rows.
        seed: the run's seed (per-image degradation seeds derive from it).
        method: a Score-CAM method of the registry (:func:`forensic.explain.method_names`).
        maps_dir: where the reduced maps are kept (clean maps of every image).
        box: a fixed reference box (x0, y0, x1, y1) in image pixels for every image; by default
            the face box found on the clean image (none: box metrics are NaN).
        keep_maps_for: sample keys whose maps are kept at every condition (for figures).
        cam_groups: channel groups of the fast Score-CAM (default: channels / 16).
        progress: progress-bar factory.
        faithfulness_steps: steps of the deletion and insertion curves recorded per stream
            (0: none; each step costs 4 forward passes per stream: map and random map, both curves).
    """
    from forensic.explain import check_method

    check_method(method)
    keep = set(keep_maps_for)
    specs = _specs(conditions)

    label = cam_method_label(method, cam_groups)

    def key_of(s: AnalysisSample, spec: str) -> tuple:
        return cam_key(s, spec, seed, label, box)

    todo = {s.key: [sp for sp in specs if not store.done(key_of(s, sp))] for s in samples}
    references: dict[str, _CleanReference | None] = {}
    for s in samples:  # a clean row whose maps file went missing must be recomputed
        if todo[s.key] and CLEAN not in todo[s.key]:
            references[s.key] = _stored_reference(store, key_of(s, CLEAN), maps_dir)
            if references[s.key] is None:
                todo[s.key].insert(0, CLEAN)
    total = sum(len(v) for v in todo.values())
    skipped = max(0, len(samples) * len(specs) - total)
    stats = {"computed": 0, "failed": 0}
    bar = (progress or _no_progress)(f"Score-CAM ({method})", total)
    items = (
        ((s, spec), work_item(s, spec, seed, explain=method, cam_groups=cam_groups)) for s in samples for spec in todo[s.key]
    )
    try:
        for (s, spec), result in detector.run(items, batch_size=4):
            key = key_of(s, spec)
            row = None
            try:
                if isinstance(result, Exception):
                    raise result
                if spec != CLEAN and references.get(s.key) is None:
                    raise RuntimeError("the clean image's Score-CAM failed: no reference to compare with")
                maps, faithful = _maps_and_faithfulness(detector, result, faithfulness_steps)
                if spec == CLEAN:
                    references[s.key] = _computed_reference(result, maps, box)
                if spec == CLEAN or s.key in keep:
                    _save_maps(_maps_file(maps_dir, key), maps, result.image_size)
                row = _cam_row(s, key, result, maps, references[s.key], faithful)
                stats["computed"] += 1
            except Exception as exc:  # one image's failure is recorded, the study goes on
                log.warning("Score-CAM of %s with %s failed: %s", s.path, spec, exc)
                row = _error_row(s, key, CAM_KEY, exc)
                stats["failed"] += 1
            store.append([row])
            bar.update(1)
    finally:
        bar.close()
    log.info("Score-CAM: %d computed, %d already done, %d failed", stats["computed"], skipped, stats["failed"])
    return RunStats(computed=stats["computed"], skipped=skipped, failed=stats["failed"])


def _stored_reference(store: RowStore, key: tuple, maps_dir: Path) -> _CleanReference | None:
    """The clean image's maps, centroids and reference box from the store and its maps file (None if missing)."""
    row = store.get(key)
    stored = load_maps(maps_dir, key) if row is not None and row.get("error") is None else None
    if stored is None:
        return None
    maps = stored[0]
    ref_box = tuple(row["box"]) if row.get("box") else None
    return _CleanReference(maps, {n: centroid(m) for n, m in maps.items()}, ref_box, row.get("box_source"))


def _computed_reference(report, maps: dict[str, np.ndarray], box: Sequence[float] | None) -> _CleanReference:
    """The clean image's reference from its explained report: a fixed box, else its face box, else none."""
    if box is not None:
        ref_box, source = tuple(float(v) for v in box), "fixed"
    elif report.face.box is not None:
        b = report.face.box
        ref_box, source = (b.x0, b.y0, b.x1, b.y1), "face"
    else:
        ref_box, source = None, None
    return _CleanReference(maps, {n: centroid(m) for n, m in maps.items()}, ref_box, source)
