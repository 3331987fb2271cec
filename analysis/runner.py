"""Per-image evaluation with resume: batched stream passes, and Score-CAM per image.

Two kinds of records, both keyed by (image key, spec, degradation seed) so that every family's
clean level is evaluated once and shared:

- **pass rows** (:func:`run_passes`, batched through :meth:`Detector.analyze_many`): per stream
  P(fake), CLS-attention entropy and the cosine between the pooled feature of the degraded and of
  the clean image; the vote; the inter-stream cosine of the DINOv2 CLS features. Robustness,
  stability, entropy and complementarity all read these.
- **CAM rows** (:func:`run_cams`, one :meth:`Detector.analyze` with ``explain`` per image and
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
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from forensic.degrade import degrade
from forensic.images import load_image
from forensic.metrics import pearson
from forensic.stages import stability

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
    "degraded_copy",
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


def degraded_copy(image: np.ndarray, sample: AnalysisSample, spec: str, seed: int) -> np.ndarray:
    """``image`` degraded by ``spec`` with the sample's own seed (the image itself when clean)."""
    return image if spec == CLEAN else degrade(image, spec, seed=image_seed(sample.key, seed))


def _base_row(sample: AnalysisSample, key: tuple, fields: Sequence[str]) -> dict[str, Any]:
    row = dict(zip(fields, key))
    row["label"] = sample.label
    return row


def _error_row(sample: AnalysisSample, key: tuple, fields: Sequence[str], exc: BaseException) -> dict[str, Any]:
    row = _base_row(sample, key, fields)
    row["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    return row


# ------------------------------------------------------------------------------------------- passes
def _pass_row(sample: AnalysisSample, key: tuple, report, clean_features: dict[str, np.ndarray]) -> dict[str, Any]:
    row = _base_row(sample, key, PASS_KEY)
    stable = stability(clean_features, {name: s.features for name, s in report.streams.items()})
    row.update(
        error=None,
        prob_fake=float(report.prob_fake),
        face_mode=report.face.mode,
        streams={
            name: {
                "prob_fake": float(s.prob_fake),
                "attention_nats": s.attention.nats if s.attention else None,
                "attention_max": s.attention.max_nats if s.attention else None,
                "stability": stable[name],
            }
            for name, s in report.streams.items()
        },
        cls_cosine=_pairs(report.feature_similarity) if report.feature_similarity is not None else {},
    )
    return row


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

    The clean image is always among the conditions (it is the stability reference). Per chunk of
    ``batch_size`` images, every pass (the clean ones first, then each spec's degraded copies)
    goes through one :meth:`Detector.analyze_many` stream, so face detection and the streams of
    successive passes overlap; rows are appended as results come, a batch at a time.
    """
    specs = _specs(conditions)
    todo = {s.key: [sp for sp in specs if not store.done(pass_key(s, sp, seed))] for s in samples}
    work = [s for s in samples if todo[s.key]]
    total = sum(len(todo[s.key]) for s in work)
    skipped = len(samples) * len(specs) - total
    stats = {"computed": 0, "failed": 0}
    bar = (progress or _no_progress)("stream passes", total)

    def save(rows: list[dict[str, Any]]) -> None:
        bad = sum(r.get("error") is not None for r in rows)
        stats["computed"] += len(rows) - bad
        stats["failed"] += bad
        bar.update(store.append(rows))
        rows.clear()

    try:
        for start in range(0, len(work), batch_size):
            chunk = work[start : start + batch_size]
            images: dict[str, np.ndarray] = {}
            rows: list[dict[str, Any]] = []
            for s in chunk:
                try:
                    images[s.key] = load_image(s.path)
                except Exception as exc:  # one unreadable file must not stop the study
                    log.warning("cannot read %s: %s", s.path, exc)
                    rows.extend(_error_row(s, pass_key(s, sp, seed), PASS_KEY, exc) for sp in todo[s.key])
            save(rows)
            loaded = [s for s in chunk if s.key in images]
            jobs = [(s, CLEAN) for s in loaded] + [(s, sp) for sp in specs[1:] for s in loaded if sp in todo[s.key]]
            streamed: deque[tuple[AnalysisSample, str]] = deque()

            def sources() -> Iterator[np.ndarray]:
                for s, spec in jobs:
                    try:
                        image = degraded_copy(images[s.key], s, spec, seed)
                    except Exception as exc:  # a degradation that fails on one odd image
                        log.warning("cannot degrade %s with %s: %s", s.path, spec, exc)
                        rows.append(_error_row(s, pass_key(s, spec, seed), PASS_KEY, exc))
                        continue
                    streamed.append((s, spec))
                    yield image

            clean_features: dict[str, dict[str, np.ndarray]] = {}
            for _, result in detector.analyze_many(sources(), batch_size=batch_size, stability=False):
                s, spec = streamed.popleft()
                key = pass_key(s, spec, seed)
                if isinstance(result, Exception):
                    rows.append(_error_row(s, key, PASS_KEY, result))
                elif spec == CLEAN:
                    clean_features[s.key] = {n: st.features for n, st in result.streams.items()}
                    if CLEAN in todo[s.key]:
                        rows.append(_pass_row(s, key, result, clean_features[s.key]))
                elif s.key not in clean_features:  # its clean pass failed: no stability reference
                    rows.append(_error_row(s, key, PASS_KEY, RuntimeError("the clean image's pass failed")))
                else:
                    rows.append(_pass_row(s, key, result, clean_features[s.key]))
                if len(rows) >= batch_size:
                    save(rows)
            save(rows)
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


def _explain(detector, image: np.ndarray, method: str, cam_groups: int | None, faithfulness_steps: int = 0):
    """One image's explanation, its reduced maps, and (``faithfulness_steps`` > 0) each stream's
    deletion/insertion areas and those of a random map (:mod:`forensic.explain.faithfulness`)."""
    report = detector.analyze(image, explain=method, stability=False, cam_groups=cam_groups)
    maps = {name: reduce_map(s.cam_image) for name, s in report.streams.items()}
    faithful = _faithfulness(detector, report, faithfulness_steps) if faithfulness_steps > 0 else {}
    return report, maps, faithful


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
    """Score-CAM of every (sample, condition) not yet in ``store``, one image at a time.

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
    for s in samples:  # a clean row whose maps file went missing must be recomputed
        if todo[s.key] and CLEAN not in todo[s.key] and load_maps(maps_dir, key_of(s, CLEAN)) is None:
            todo[s.key].insert(0, CLEAN)
    total = sum(len(v) for v in todo.values())
    skipped = max(0, len(samples) * len(specs) - total)
    computed = failed = 0
    bar = (progress or _no_progress)(f"Score-CAM ({method})", total)
    try:
        for s in samples:
            if not todo[s.key]:
                continue
            try:
                image = load_image(s.path)
                clean = _clean_reference(
                    detector, s, image, store, key=key_of(s, CLEAN), maps_dir=maps_dir, box=box, method=method, cam_groups=cam_groups,
                    faithfulness_steps=faithfulness_steps,
                )
            except Exception as exc:  # one unreadable file (or failed analysis) must not stop the study
                log.warning("cannot analyse %s: %s", s.path, exc)
                failed += store.append(_error_row(s, key_of(s, sp), CAM_KEY, exc) for sp in todo[s.key])
                bar.update(len(todo[s.key]))
                continue
            if CLEAN in todo[s.key]:
                computed += 1
                bar.update(1)
            for spec in todo[s.key]:
                if spec == CLEAN:
                    continue
                key = key_of(s, spec)
                start = time.perf_counter()
                try:
                    report, maps, faithful = _explain(detector, degraded_copy(image, s, spec, seed), method, cam_groups, faithfulness_steps)
                    row = _cam_row(s, key, report, maps, clean, faithful)
                    if s.key in keep:
                        _save_maps(_maps_file(maps_dir, key), maps, report.image_size)
                    computed += 1
                except Exception as exc:  # one image's failure is recorded, the study goes on
                    log.warning("Score-CAM of %s with %s failed: %s", s.path, spec, exc)
                    row = _error_row(s, key, CAM_KEY, exc)
                    failed += 1
                log.debug("CAM %s %s: %.1fs", s.key, spec, time.perf_counter() - start)
                store.append([row])
                bar.update(1)
    finally:
        bar.close()
    log.info("Score-CAM: %d computed, %d already done, %d failed", computed, skipped, failed)
    return RunStats(computed=computed, skipped=skipped, failed=failed)


def _clean_reference(
    detector, sample: AnalysisSample, image: np.ndarray, store: RowStore, *, key: tuple, maps_dir: Path, box, method: str, cam_groups,
    faithfulness_steps: int = 0,
) -> _CleanReference:
    """The clean image's maps, centroids and reference box: from the store and maps file, or computed (and stored)."""
    row = store.get(key)
    stored = load_maps(maps_dir, key) if row is not None and row.get("error") is None else None
    if stored is not None:
        maps = stored[0]
        ref_box = tuple(row["box"]) if row.get("box") else None
        return _CleanReference(maps, {n: centroid(m) for n, m in maps.items()}, ref_box, row.get("box_source"))
    report, maps, faithful = _explain(detector, image, method, cam_groups, faithfulness_steps)
    if box is not None:
        ref_box, source = tuple(float(v) for v in box), "fixed"
    elif report.face.box is not None:
        b = report.face.box
        ref_box, source = (b.x0, b.y0, b.x1, b.y1), "face"
    else:
        ref_box, source = None, None
    clean = _CleanReference(maps, {n: centroid(m) for n, m in maps.items()}, ref_box, source)
    _save_maps(_maps_file(maps_dir, key), maps, report.image_size)
    store.append([_cam_row(sample, key, report, maps, clean, faithful)])
    return clean
