"""After a run: one export for every job, and merging single-stream exports.

:func:`export` is the last step of :func:`train.engine.drive`, whatever the job trained: it loads
the best checkpoint's weights, asks the job for its report (held-out outputs, fitted temperatures,
the model card's sections: :class:`ExportReport`), and writes ``OUT/val_predictions.jsonl``,
``OUT/metrics.json`` and ``OUT/export/`` with :func:`forensic.weights.save_pretrained`, so it loads
with ``Detector.from_pretrained(OUT/export)`` and ``python -m forensic predict --weights OUT/export``.
Every file is written atomically, the export folder whole. :func:`merge_exports` combines
single-stream exports into one three-stream folder after checking that they share the same base weights.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors import safe_open

from forensic.config import STREAM_NAMES, ModelConfig
from forensic.model import ForensicModel
from forensic.modelcard import render_model_card
from forensic.weights import push_to_hub, save_pretrained

from ._io import atomic_write, atomic_write_text, replace_dir
from ._json import jsonable
from .checkpoint import checkpoint_dir, load_checkpoint
from .config import TrainConfig
from .distributed import DistInfo
from .modeling import base_mismatch
from .rundir import RunFingerprint, RunFolderError

__all__ = ["ExportReport", "Exported", "Exportable", "export", "merge_exports", "MergeError", "fmt"]

log = logging.getLogger(__name__)


class MergeError(ValueError):
    """Single-stream exports cannot be merged (different bases, LoRA settings, duplicate streams)."""


# --------------------------------------------------------------------------------- one run
@dataclass
class ExportReport:
    """What a job says about its best weights (see :meth:`Exportable.report`).

    Attributes:
        temperatures: per stream, the calibration temperature written to the export.
        summary: ``OUT/metrics.json``.
        predictions: ``OUT/val_predictions.jsonl``, one JSON object per held-out image and set.
        meta_key, meta: the export's ``config.json`` ``meta[meta_key]`` (the run's record).
        description: the model's one-line description.
        sections: the model card's sections.
        card_metadata: the model card's extra front matter.
        final_metrics: per held-out set, the figures of the best weights (the run's result).
        commit_message: for ``export.push_to_hub``.
    """

    temperatures: dict[str, float]
    summary: dict[str, Any]
    predictions: Iterable[Mapping[str, Any]]
    meta_key: str
    meta: dict[str, Any]
    description: str
    sections: dict[str, str]
    card_metadata: dict[str, Any] = field(default_factory=dict)
    final_metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    commit_message: str = "Upload weights trained with python -m train"


class Exportable(Protocol):
    """What :func:`export` needs of a job (:class:`train.engine.Job` has it)."""

    model: ForensicModel

    def load_stream_state(self, state: Mapping[str, torch.Tensor]) -> None:
        """Loads the trained tensors of a checkpoint."""

    def report(self, cfg: TrainConfig, *, info: DistInfo, best_epoch: int, world_size: int) -> ExportReport:
        """On the loaded best weights, rank 0 alone (``info`` has no collectives): the held-out
        outputs, the temperatures fitted on them and the export's texts."""


@dataclass
class Exported:
    """What :func:`export` wrote: the folder, the temperatures and the best weights' figures."""

    folder: Path
    temperatures: dict[str, float]
    final_metrics: dict[str, dict[str, Any]]


def export(
    job: Exportable, cfg: TrainConfig, *, out: Path, info: DistInfo, best_epoch: int, fingerprint: RunFingerprint | None = None
) -> Exported:
    """Rank 0 after the last epoch: best weights -> the job's report -> ``OUT/export`` (and the hub).

    Raises:
        train.rundir.RunFolderError: ``best.pt`` belongs to another run than ``fingerprint``.
    """
    best = checkpoint_dir(out) / "best.pt"
    if best.is_file():
        state = load_checkpoint(best)
        if fingerprint is not None and state.config_hash and (state.config_hash, state.data_hash) != (
            fingerprint.config_hash, fingerprint.data_hash,
        ):
            raise RunFolderError(f"{best} belongs to another run: start a new run with --overwrite (or another --out)")
        if state.epoch != best_epoch:
            log.warning("%s holds epoch %d, not the best epoch %d: exporting it anyway", best, state.epoch, best_epoch)
        job.load_stream_state(state.stream_state)
    report = job.report(cfg, info=DistInfo(device=info.device), best_epoch=best_epoch, world_size=info.world_size)

    def write_predictions(f) -> None:
        for row in report.predictions:
            f.write((json.dumps(row) + "\n").encode())

    atomic_write(out / "val_predictions.jsonl", write_predictions)
    atomic_write_text(out / "metrics.json", json.dumps(jsonable(report.summary), indent=2) + "\n")
    config = job.model.config
    for stream, t in report.temperatures.items():
        config = config.with_stream(dataclasses.replace(config.stream(stream), temperature=float(t)))
    config = config.replace(untrained=False, description=report.description,
                            meta={**dict(config.meta), report.meta_key: jsonable(report.meta)})
    card = render_model_card(config, sections=report.sections, extra_metadata=report.card_metadata)
    # rewritten whole (no stale stream files from an older run), and atomically: a kill while
    # writing leaves the previous export in place
    folder = replace_dir(out / "export", lambda staging: save_pretrained(job.model, staging, config=config, model_card=card))
    log.info("wrote %s (%s)", folder, ", ".join(f"{s} T={t:.4g}" for s, t in report.temperatures.items()))
    if cfg.export.push_to_hub:
        url = push_to_hub(folder, cfg.export.push_to_hub, private=cfg.export.private, commit_message=report.commit_message)
        log.info("pushed %s to %s", folder, url)
    return Exported(folder=folder, temperatures=dict(report.temperatures), final_metrics=report.final_metrics)


def fmt(value: Any, digits: int = 4) -> str:
    """A figure for a model card: ``n/a`` for None or NaN."""
    return "n/a" if value is None or (isinstance(value, float) and value != value) else f"{value:.{digits}f}"


# --------------------------------------------------------------------------------- merging
def merge_exports(out: str | os.PathLike, exports: Sequence[str | os.PathLike], *, overwrite: bool = False) -> Path:
    """Combines single-stream exports into one folder (e.g. texture + face + fusion).

    Checks that every export uses the same DINOv2 base (and the same CLIP base among those that use
    CLIP) and the same LoRA settings, and that no stream appears twice. Base files held inside the
    exports are copied once.

    Raises:
        MergeError: the exports are not compatible.
    """
    out = Path(out)
    folders = [Path(e) for e in exports]
    if not folders:
        raise MergeError("give at least one export folder")
    configs = []
    for folder in folders:
        if not (folder / "config.json").is_file():
            raise MergeError(f"{folder} has no config.json: pass the export folders (OUT/export) of training runs")
        configs.append(ModelConfig.from_json_file(folder / "config.json"))
    owners: dict[str, int] = {}
    for i, config in enumerate(configs):
        for name in config.stream_names:
            if name in owners:
                raise MergeError(f"stream {name!r} is in both {folders[owners[name]]} and {folders[i]}")
            owners[name] = i
    first = configs[0]
    for i, config in enumerate(configs[1:], start=1):
        if config.lora != first.lora:
            raise MergeError(f"LoRA settings differ: {folders[0]} has {first.lora}, {folders[i]} has {config.lora}")
        reason = base_mismatch(first.dinov2, folders[0], config.dinov2, folders[i])
        if reason:
            raise MergeError(f"the DINOv2 bases differ between {folders[0]} and {folders[i]}: {reason}")
    clip_users = [i for i, c in enumerate(configs) if any(s.uses_clip for s in c.streams)]
    clip_owner = clip_users[0] if clip_users else 0
    for i in clip_users[1:]:
        reason = base_mismatch(configs[clip_owner].clip, folders[clip_owner], configs[i].clip, folders[i])
        if reason:
            raise MergeError(f"the CLIP bases differ between {folders[clip_owner]} and {folders[i]}: {reason}")
    presets = {c.preset for c in configs}
    if len(presets) > 1:
        log.warning("merging exports of different presets %s (same bases, so allowed)", sorted(presets))

    streams = sorted((s for c in configs for s in c.streams), key=lambda s: STREAM_NAMES.index(s.name) if s.name in STREAM_NAMES else 99)
    merged = first.replace(
        clip=configs[clip_owner].clip,
        streams=tuple(streams),
        untrained=any(c.untrained for c in configs),
        meta={"merged_from": [str(f) for f in folders], "streams": {n: dict(configs[i].meta) for n, i in owners.items()}},
    )
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise MergeError(f"{out} exists and is not empty (pass overwrite=True / --overwrite)")

    def fill(folder: Path) -> None:
        for name, i in owners.items():
            shutil.copyfile(folders[i] / f"{name}.safetensors", folder / f"{name}.safetensors")
        for family, owner in (("dinov2", 0), ("clip", clip_owner)):
            spec = getattr(merged, family)
            if spec is not None and spec.weights_file:
                shutil.copyfile(folders[owner] / spec.weights_file, folder / spec.weights_file)
        _check_stream_files(merged, folder)
        (folder / "config.json").write_text(merged.to_json())
        (folder / "README.md").write_text(render_model_card(merged, sections=_merged_sections(merged)))

    replace_dir(out, fill)  # built beside OUT_DIR, then swapped in: a failed merge leaves OUT_DIR as it was
    log.info("merged %d export(s) into %s: streams %s", len(folders), out, ", ".join(merged.stream_names))
    return out


def _check_stream_files(config: ModelConfig, folder: Path) -> None:
    """Every stream file has exactly the keys and shapes the merged model expects (checked on ``meta``)."""
    model = ForensicModel(config, device="meta")
    own = model.state_dict()
    for name in config.stream_names:
        with safe_open(str(folder / f"{name}.safetensors"), framework="pt") as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
        mapped = model.stream_keys_to_model(name, shapes)
        expected = {k for k in own if k.startswith((f"adapters.{name}.", f"heads.{name}."))}
        if set(mapped) != expected:
            raise MergeError(f"the {name} stream's file does not match the merged model's {name} stream")
        bad = [k for k, s in mapped.items() if tuple(own[k].shape) != s]
        if bad:
            raise MergeError(f"the {name} stream's file has other shapes than the merged model expects: {bad[:3]}")


def _merged_sections(config: ModelConfig) -> dict[str, str]:
    rows = ["| stream | preset | best epoch | clean AUC | temperature | initialised from |", "|---|---|---|---|---|---|"]
    for name in config.stream_names:
        training = (config.meta.get("streams", {}).get(name) or {}).get("training") or {}
        auc = ((training.get("metrics") or {}).get("clean") or {}).get("auc")
        rows.append(
            f"| {name} | {training.get('preset', '?')} | {training.get('best_epoch', '?')} | {fmt(auc)} | "
            f"{config.stream(name).temperature:.4g} | {training.get('init_from') or '-'} |"
        )
    return {"Training": "Each stream was trained by its own `python -m train` run and merged with `python -m train merge`.\n\n" + "\n".join(rows)}
