"""Model cards (the weights folder's README.md), with Hub metadata in the YAML front matter."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .config import ModelConfig
from .limits import TITLE, limits_of

__all__ = ["render_model_card", "card_metadata"]


def card_metadata(config: ModelConfig, *, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The Hub metadata of a card: licence, tags, pipeline and base models."""
    uses_clip = config.clip is not None and any(s.uses_clip for s in config.streams)
    base_models = [s.hub_id for s in (config.dinov2, config.clip if uses_clip else None) if s is not None and s.hub_id]
    tags = ["deepfake-detection", "image-forensics", "dinov2"] + (["clip"] if uses_clip else []) + ["lora", f"preset-{config.preset}"]
    meta: dict[str, Any] = {
        "license": "apache-2.0",
        "library_name": "forensic",
        "pipeline_tag": "image-classification",
        "tags": tags,
    }
    if base_models:
        meta["base_model"] = base_models
    meta.update(extra or {})
    return meta


def _yaml(meta: Mapping[str, Any]) -> str:
    # JSON scalars are valid YAML; lists are written as block lists for readability
    lines = []
    for key, value in meta.items():
        if isinstance(value, list):
            lines.append(f"{key}:")
            lines.extend(f"- {json.dumps(v)}" for v in value)
        else:
            lines.append(f"{key}: {json.dumps(value)}")
    return "\n".join(lines)


def render_model_card(
    config: ModelConfig,
    *,
    sections: Mapping[str, str] | None = None,
    extra_metadata: Mapping[str, Any] | None = None,
) -> str:
    """A model card for ``config``; ``sections`` (title -> markdown) add data, recipe and metrics."""
    rows = "\n".join(
        f"| {s.name} | {s.input} {s.size}px | {'DINOv2 + CLIP' if s.uses_clip else 'DINOv2'} | {s.head.kind} | {s.temperature:g} |"
        for s in config.streams
    )
    weights = ", ".join(f"{k} {v:g}" for k, v in config.vote.weights.items())
    base = f"- DINOv2: `{config.dinov2.arch}`" + (f" from `{config.dinov2.hub_id}`" if config.dinov2.hub_id else " (weights in this folder)")
    if config.clip is not None and any(s.uses_clip for s in config.streams):
        base += f"\n- CLIP: `{config.clip.arch}`" + (f" from `{config.clip.hub_id}`" if config.clip.hub_id else " (weights in this folder)")
    body = [
        f"---\n{_yaml(card_metadata(config, extra=extra_metadata))}\n---",
        f"# Robust deepfake detector ({config.preset})",
        config.description or "",
        "Load it with the `forensic` package:\n\n```python\nfrom forensic import Detector\n"
        "detector = Detector.from_pretrained(\"hf-hub:OWNER/REPO\")  # or a local folder\n"
        "report = detector.analyze(\"photo.jpg\")\nprint(report.prob_fake, report.label)\n```",
        "## Streams\n\n| stream | input | backbone | head | temperature |\n|---|---|---|---|---|\n" + rows,
        f"Vote: weights {weights}; each stream's P(fake) and the result rounded to {config.vote.decimals} decimal(s).",
        "## Base backbones\n\n" + base,
    ]
    if config.untrained:
        body.append("**These weights are untrained (random): every output is meaningless.**")
    for title, text in (sections or {}).items():
        body.append(f"## {title}\n\n{text}")
    # the same text as the app's box and the report's (forensic.limits), from the config's own record
    body.append(f"## {TITLE}\n\n{limits_of(config).markdown()}")
    return "\n\n".join(part for part in body if part) + "\n"
