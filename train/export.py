"""After training: calibrate, write our weights format with a model card, push, and merge streams.

``OUT/export/`` is written with :func:`forensic.weights.save_pretrained`, so it loads with
``Detector.from_pretrained(OUT/export)`` and ``python -m forensic predict --weights OUT/export``.
Each run trains one stream; :func:`merge_exports` combines single-stream exports into one
three-stream folder after checking that they share the same base weights.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import safe_open

from forensic.calibration import CalibrationResult, calibrate
from forensic.config import STREAM_NAMES, ModelConfig
from forensic.model import ForensicModel
from forensic.modelcard import render_model_card
from forensic.weights import push_to_hub, save_pretrained

from ._io import atomic_write, atomic_write_text, replace_dir
from ._json import jsonable
from .checkpoint import checkpoint_dir, load_checkpoint
from .config import TrainConfig
from .data import make_loader
from .distributed import DistInfo
from .evaluate import CLEAN, EvalResult, evaluate
from .modeling import base_mismatch
from .prepare import RunData
from .rundir import RunFingerprint, RunFolderError

if TYPE_CHECKING:
    from .engine import FitResult  # the run's result, which the export fills in

__all__ = ["export_run", "export_stream", "merge_exports", "MergeError", "training_card_sections"]

log = logging.getLogger(__name__)

_METRIC_KEYS = ("auc", "ap", "accuracy", "eer", "ece")


class MergeError(ValueError):
    """Single-stream exports cannot be merged (different bases, LoRA settings, duplicate streams)."""


# --------------------------------------------------------------------------------- one run
def export_run(
    cfg: TrainConfig,
    model: ForensicModel,
    *,
    data: RunData,
    out: Path,
    info: DistInfo,
    criterion: torch.nn.Module,
    result: FitResult,
    fingerprint: RunFingerprint | None = None,
) -> Path:
    """Rank 0 after training: best weights -> validation logits -> temperature -> ``OUT/export``.

    Also writes ``OUT/val_predictions.jsonl`` (per validation image: logits and P(fake) before and
    after calibration) and ``OUT/metrics.json``. Every file is written atomically, the export
    folder whole.

    Raises:
        train.rundir.RunFolderError: ``best.pt`` belongs to another run than ``fingerprint``.
    """
    stream = cfg.model.stream
    best = checkpoint_dir(out) / "best.pt"
    if best.is_file():
        state = load_checkpoint(best)
        if fingerprint is not None and state.config_hash and (state.config_hash, state.data_hash) != (
            fingerprint.config_hash, fingerprint.data_hash,
        ):
            raise RunFolderError(f"{best} belongs to another run: start a new run with --overwrite (or another --out)")
        if state.epoch != result.best_epoch:
            log.warning("%s holds epoch %d, not the best epoch %d: exporting it anyway", best, state.epoch, result.best_epoch)
        model.load_stream_state_dict(stream, state.stream_state)
    # rank 0 alone: evaluate without collectives
    solo = DistInfo(device=info.device)
    eval_bs = cfg.data.eval_batch_size or cfg.data.batch_size
    evals: dict[str, EvalResult] = {
        name: evaluate(
            model, make_loader(ds, batch_size=eval_bs, shuffle=False, seed=cfg.seed, info=solo, num_workers=cfg.data.num_workers),
            stream=stream, criterion=criterion, info=solo, precision=cfg.precision, name=name,
        )
        for name, ds in data.val.items()
    }
    calibration: CalibrationResult | None = None
    temperature = 1.0
    clean = evals.get(CLEAN)
    if cfg.export.calibrate and clean is not None:
        # one rule with inference tools: T within forensic.calibration.TEMPERATURE_RANGE, and T = 1
        # (with the reason, logged by calibrate) on a set too small or without errors
        calibration = calibrate(clean.logits, clean.labels)
        temperature = calibration.temperature
    elif cfg.export.calibrate:
        log.warning("no validation set: the temperature stays 1.0 (uncalibrated)")
    metrics = {
        name: {"uncalibrated": ev.metrics(1.0), "calibrated": ev.metrics(temperature)} for name, ev in evals.items()
    }
    atomic_write(out / "val_predictions.jsonl", lambda f: _write_predictions(f, evals, data, temperature))
    summary = {
        "stream": stream,
        "best_epoch": result.best_epoch,
        "temperature": temperature,
        "calibration": calibration.to_dict() if calibration else None,
        "metrics": metrics,
    }
    atomic_write_text(out / "metrics.json", json.dumps(jsonable(summary), indent=2) + "\n")
    export_dir = export_stream(
        model, cfg, out / "export", temperature=temperature, calibration=calibration, metrics=metrics,
        data=data, result=result, world_size=info.world_size,
    )
    result.export_dir, result.temperature = export_dir, temperature
    result.final_metrics = {name: m["calibrated"] for name, m in metrics.items()}
    if cfg.export.push_to_hub:
        url = push_to_hub(export_dir, cfg.export.push_to_hub, private=cfg.export.private,
                          commit_message=f"Upload the {stream} stream trained with python -m train")
        log.info("pushed %s to %s", export_dir, url)
    return export_dir


def _write_predictions(f, evals: Mapping[str, EvalResult], data: RunData, temperature: float) -> None:
    for name, ev in evals.items():
        items = data.val[name].items
        raw, cal = ev.prob_fake(1.0), ev.prob_fake(temperature)
        for k, index in enumerate(ev.indices.tolist()):
            item = items[index]
            f.write((json.dumps({
                "set": name, "path": str(item.sample.path), "pseudo": item.pseudo, "label": int(ev.labels[k]),
                "logits": [float(v) for v in ev.logits[k]], "prob_fake": float(raw[k]), "prob_fake_calibrated": float(cal[k]),
            }) + "\n").encode())


def _fmt(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def training_card_sections(
    cfg: TrainConfig,
    *,
    metrics: Mapping[str, Mapping[str, Mapping[str, float]]],
    calibration: CalibrationResult | None,
    temperature: float,
    data: RunData,
    result: FitResult,
    world_size: int,
) -> dict[str, str]:
    """The model card's training sections: data, recipe, validation metrics, calibration, limitations."""
    counts = data.split.counts()
    source = Path(cfg.data.path).name if cfg.data.path else "?"
    data_text = (
        f"- Source: `{source}` ({'CSV manifest' if str(cfg.data.path).endswith('.csv') else 'folder with real/ and fake/'}); "
        f"split by {'the manifest' if data.split.split_by == 'manifest' else f'a seeded stratified {cfg.data.val_fraction:g} hold-out'}.\n"
        f"- Training: {counts['train']['real']} real, {counts['train']['fake']} fake images"
        + (f" (+{counts['train']['real']} self-blended pseudo-fakes)" if cfg.data.pseudo_fakes else "")
        + f".\n- Validation: {counts['val']['real']} real, {counts['val']['fake']} fake images"
        + (f" (+{counts['val']['real']} pseudo-fakes)" if cfg.data.pseudo_fakes else "")
        + "."
        + (f"\n- Left out: {len(data.skipped)} file(s) that cannot be read." if data.skipped else "")
    )
    aug = cfg.augment
    recipe = "\n".join([
        f"- Stream: `{cfg.model.stream}` of preset `{cfg.model.preset}`; trained: {cfg.model.trainable} "
        f"(LoRA on the frozen DINOv2 base + head)" + (f"; initialised from `{cfg.init.from_dir}`" if cfg.init.from_dir else ""),
        f"- {cfg.epochs} epochs, batch {cfg.data.batch_size} x {world_size} process(es) x {cfg.optim.grad_accum} accumulation steps; "
        f"best epoch {result.best_epoch} (validation AUC).",
        f"- {cfg.optim.name} lr {cfg.optim.lr:g}" + (f" (head {cfg.optim.head_lr:g})" if cfg.optim.head_lr else "")
        + f", weight decay {cfg.optim.weight_decay:g}, linear warm-up {cfg.optim.warmup_fraction:g} then cosine; "
        f"focal loss gamma {cfg.loss.gamma:g}" + (f", alpha {cfg.loss.alpha:g}" if cfg.loss.alpha is not None else "") + ".",
        f"- Augmentation: the paper's compound degradation on {aug.global_p:.0%} of training images "
        f"(strength {aug.strength:g}, op_p {aug.op_p:g}, per-op strength cap {aug.strength_cap:g}); validation clean"
        + (f" and degraded by {', '.join(f'`{d}`' for d in cfg.eval.degradations)}" if cfg.eval.degradations else "") + ".",
        f"- Seed {cfg.seed}; precision {cfg.precision}.",
    ])
    rows = ["| validation set | AUC | AP | accuracy | EER | ECE (calibrated) |", "|---|---|---|---|---|---|"]
    for name, m in metrics.items():
        c = m["calibrated"]
        rows.append(f"| {name} | {_fmt(c['auc'])} | {_fmt(c['ap'])} | {_fmt(c['accuracy'])} | {_fmt(c['eer'])} | {_fmt(c['ece'])} |")
    if calibration is not None and calibration.fitted:
        calib = (
            f"Temperature scaling fitted on the clean validation logits: T = {temperature:.4g}. "
            f"ECE {calibration.ece_before:.4f} -> {calibration.ece_after:.4f}, "
            f"NLL {calibration.nll_before:.4f} -> {calibration.nll_after:.4f} (on the fitting set itself)."
            + (f" Note: {calibration.note}." if calibration.note else "")
        )
    elif calibration is not None:
        calib = (
            f"Not calibrated: temperature kept at 1, because {calibration.note}. "
            "P(fake) is the model's own softmax; fit a temperature on a larger held-out set before relying on it as a probability."
        )
    else:
        calib = "Not calibrated (no validation set): temperature 1."
    n_val = counts["val"]["real"] + counts["val"]["fake"]
    limits = [
        f"- Validated on {n_val} held-out images from the same source as the training data; "
        "other generators, cameras and post-processing can score very differently.",
        "- The temperature was fitted and reported on the same validation images, so the calibrated ECE is optimistic.",
    ]
    if cfg.model.random_bases or cfg.model.preset == "tiny-random":
        limits.append("- The base backbones are random (not pretrained): a toy or smoke-test model, not a detector.")
    return {
        "Training data": data_text,
        "Training recipe": recipe,
        "Validation metrics": "\n".join(rows),
        "Calibration": calib,
        "Training limitations": "\n".join(limits),
    }


def export_stream(
    model: ForensicModel,
    cfg: TrainConfig,
    folder: Path,
    *,
    temperature: float,
    calibration: CalibrationResult | None,
    metrics: Mapping[str, Mapping[str, Mapping[str, float]]],
    data: RunData,
    result: FitResult,
    world_size: int,
) -> Path:
    """Writes the trained stream with its temperature, training metadata and model card."""
    stream = cfg.model.stream
    config = model.config.with_stream(dataclasses.replace(model.config.stream(stream), temperature=float(temperature)))
    training = {
        "stream": stream,
        "preset": cfg.model.preset,
        "best_epoch": result.best_epoch,
        "epochs": cfg.epochs,
        "world_size": world_size,
        "init_from": cfg.init.from_dir,
        "data": data.split.counts(),
        "pseudo_fakes": cfg.data.pseudo_fakes,
        "temperature": float(temperature),
        "calibration": calibration.to_dict() if calibration else None,
        "metrics": {name: {k: _clean(m["calibrated"][k]) for k in _METRIC_KEYS} for name, m in metrics.items()},
        "config": cfg.replace(resume=None).to_dict(),
    }
    n_train = sum(sum(c.values()) for c in [data.split.counts()["train"]])
    config = config.replace(
        untrained=False,
        description=f"The {stream} stream of preset `{cfg.model.preset}`, trained with `python -m train` on {n_train} images.",
        meta={**dict(config.meta), "training": training},
    )
    sections = training_card_sections(
        cfg, metrics=metrics, calibration=calibration, temperature=temperature, data=data, result=result, world_size=world_size
    )
    clean = metrics.get("clean", {}).get("calibrated", {})
    extra = {"metrics": ["roc_auc", "average_precision", "accuracy", "equal_error_rate"], "trained_stream": stream}
    if clean:
        extra["val_auc"] = _clean(clean.get("auc"))
    card = render_model_card(config, sections=sections, extra_metadata=extra)
    # an export is rewritten whole (no stale stream files from an older run), and atomically: a kill
    # while writing leaves the previous export in place
    replace_dir(folder, lambda staging: save_pretrained(model, staging, config=config, model_card=card))
    log.info("wrote %s (temperature %.4g)", folder, temperature)
    return folder


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


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
            f"| {name} | {training.get('preset', '?')} | {training.get('best_epoch', '?')} | {_fmt(auc)} | "
            f"{config.stream(name).temperature:.4g} | {training.get('init_from') or '-'} |"
        )
    return {"Training": "Each stream was trained by its own `python -m train` run and merged with `python -m train merge`.\n\n" + "\n".join(rows)}
