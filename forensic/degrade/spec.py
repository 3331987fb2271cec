"""Degradation specs and named presets.

Grammar (whitespace around every token is ignored, names are case-insensitive)::

    spec    := step (";" step)*          applied left to right
    step    := op | op ":" params | preset
    params  := name "=" value ("," name "=" value)*

e.g. ``jpeg:quality=20;gblur:sigma=2``, ``ffpp-c40;gnoise:sigma=5``, ``compound:strength=0.5``.
A value ``auto`` (or leaving a parameter out) lets the operation derive it from ``strength`` or draw
it from the seed. ``none`` is the empty spec. Every spec keeps the image size: if an operation
resized the image, :func:`apply_spec` resizes it back (bicubic) at the end.

A spec is at most :data:`MAX_SPEC_CHARS` characters and :data:`MAX_SPEC_OPS` operations once its
presets are expanded (``compound`` counts as one), so that a pasted or generated spec cannot keep a
server busy for minutes; error messages quote at most a short piece of the input.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import cv2
import numpy as np

from forensic.degrade.compound import COMPOUND_OP, compound_degrade, config_from_params
from forensic.degrade.families import FAMILIES, level_params
from forensic.degrade.ops import (
    DF_TYPES,
    OPS,
    AppliedOp,
    DegradeResult,
    OpInfo,
    SpecError,
    format_value,
    as_float,
    as_uint8,
    untouched,
)

__all__ = [
    "ALL_OPS",
    "DEGRADATION_PRESETS",
    "MAX_SPEC_CHARS",
    "MAX_SPEC_OPS",
    "DegradationSpec",
    "OpCall",
    "PRESET_REFERENCES",
    "SpecError",
    "apply_spec",
    "describe_ops",
    "parse_spec",
    "run_spec",
    "single_step",
]

ALL_OPS: Mapping[str, OpInfo] = MappingProxyType({**OPS, COMPOUND_OP.name: COMPOUND_OP})
"""Every name a spec step may use: the registered operations plus ``compound``."""

#: Longest spec text accepted (the longest preset expands to under 200 characters).
MAX_SPEC_CHARS: int = 2000
#: Most operations in one spec, after presets are expanded (a person chains a handful).
MAX_SPEC_OPS: int = 32
# Longest operation name, parameter name or value worth quoting back; no valid one comes close.
_MAX_TOKEN = 64

_COMPOUND_PRESET = re.compile(r"compound-(\d+(?:\.\d*)?|\.\d+)")
_GROUP_TITLES = {
    "blur": "Blur",
    "noise": "Noise",
    "geometry": "Geometry",
    "compression": "Compression",
    "color": "Colour and tone",
    "artifact": "Artefacts",
    "distractor": "Distractors",
    "deeperforensics": "DeeperForensics-1.0 (levels 1-5)",
    "compound": "Compound engine",
}


@dataclass(frozen=True)
class OpCall:
    """One step of a spec: an operation name and its explicit parameters (absent = auto)."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    def __hash__(self) -> int:
        return hash((self.name, tuple(self.params.items())))

    def __str__(self) -> str:
        if not self.params:
            return self.name
        return self.name + ":" + ",".join(f"{k}={format_value(v)}" for k, v in self.params.items())


@dataclass(frozen=True)
class DegradationSpec:
    """A parsed spec: operations applied left to right. ``str(spec)`` is its canonical text."""

    calls: tuple[OpCall, ...] = ()

    @property
    def is_identity(self) -> bool:
        return not self.calls

    def __str__(self) -> str:
        return ";".join(str(c) for c in self.calls) if self.calls else "none"

    def __add__(self, other: DegradationSpec) -> DegradationSpec:
        return DegradationSpec(self.calls + parse_spec(other).calls)


# --------------------------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------------------------


def single_step(op: str, params: Mapping[str, Any]) -> DegradationSpec:
    """The one-step spec ``op`` with ``params`` (checked and typed as in a parsed spec).

    Raises:
        SpecError: an unknown parameter or a bad value.
    """
    return DegradationSpec((OpCall(op, ALL_OPS[op].validate(params)),))


def _build_presets() -> Mapping[str, str]:
    table: dict[str, str] = {"none": "", "ffpp-raw": ""}
    for quality in (100, 95, 90, 80, 70, 60, 50, 40, 30, 20, 10, 5):
        table[f"jpeg-q{quality}"] = f"jpeg:quality={quality}"
    table["ffpp-c23"] = "h264:crf=23"
    table["ffpp-c40"] = "h264:crf=40"
    for kind in DF_TYPES:
        for level in range(1, 6):
            table[f"df-{kind}-{level}"] = f"df-{kind}:level={level}"
    for tenth in range(11):  # strength 0 is the clean image, as in the protocol
        table[f"compound-{tenth / 10:.1f}"] = f"compound:strength={format_value(tenth / 10)}" if tenth else ""
    table["paper-train"] = "compound:strength=1"
    for family in FAMILIES:  # the robustness protocol's levels (forensic.degrade.protocol)
        for label, params in level_params(family):
            table.setdefault(f"{family}-{label}", "" if params is None else str(single_step(family, params)))
    return MappingProxyType(table)


DEGRADATION_PRESETS: Mapping[str, str] = _build_presets()
"""Named degradation specs: preset name -> spec text (``""`` for the clean image), read-only.

Not ``forensic.PRESETS``, the model presets.
"""


#: What the presets named after a reference reproduce, and how closely (``--list``, the README).
PRESET_REFERENCES: tuple[tuple[str, str], ...] = (
    ("ffpp-raw", "FaceForensics++ raw (c0): the frame as it is, nothing applied"),
    ("ffpp-c23, ffpp-c40", "FaceForensics++ c23 / c40: real libx264 at CRF 23 / 40 (encoder defaults, yuv420p), "
     "the image as one intra frame; a clip's P/B-frames are quantised more coarsely"),
    ("df-compress-1..5", "DeeperForensics-1.0 video compression: libx264 at CRF 30/32/35/38/40, one intra frame"),
    ("df-saturation, df-contrast, df-blur, df-pixelate",
     "match DeeperForensics-1.0 to the grey level: the same bytes, on the 8-bit frame, truncated where it truncates"),
    ("df-noise", "DeeperForensics-1.0's distribution (studio-range YCbCr, truncated to 8 bits): the std per "
     "level of the published formula (sqrt(v)*255*255/219 on Y, /224 on chroma); other random samples"),
    ("df-block", "DeeperForensics-1.0's rule: min(H, W) // 256 * N grey 8x8 blocks, so none on an image "
     "under 256 px; other random positions"),
    ("jpeg-q<N>", "libjpeg (through OpenCV) at quality N, 4:2:0 chroma"),
    ("paper-train, compound-<S>", "the paper's compound engine (forensic.degrade.compound)"),
)


def _resolve_preset(name: str) -> DegradationSpec | None:
    if name in DEGRADATION_PRESETS:
        return parse_spec(DEGRADATION_PRESETS[name])
    match = _COMPOUND_PRESET.fullmatch(name)
    if match:  # compound-<strength> for any strength, not just the listed tenths
        return single_step(COMPOUND_OP.name, {"strength": match.group(1)})
    return None


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def _clip(text: str, limit: int = 40) -> str:
    """``repr(text)``, cut to about ``limit`` characters: errors never echo a huge input back."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


def _unknown_op_message(name: str) -> str:
    close = difflib.get_close_matches(name, [*ALL_OPS, *DEGRADATION_PRESETS], n=3) if len(name) <= _MAX_TOKEN else []
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return (
        f"unknown operation or preset {_clip(name)}.{hint} Valid operations: {', '.join(ALL_OPS)}. "
        "Presets: none, jpeg-q<N>, ffpp-c23, ffpp-c40, df-<type>-<1..5>, compound-<strength>, "
        "paper-train, gnoise-sigma<N>, gblur-<s>, motion-blur-<s>, resize-<s> "
        "(list them all with `python -m forensic degrade --list`)."
    )


def _parse_params(text: str, op: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        too_long = len(key) > _MAX_TOKEN or len(value.strip()) > _MAX_TOKEN
        if too_long or not sep or not key or not value.strip():
            valid = ALL_OPS[op].params if op in ALL_OPS else ()
            names = "; ".join(f"{p.name} ({p.range_text()})" for p in valid) or "none"
            problem = "is too long for a parameter" if too_long else "is not param=value"
            raise SpecError(f"{op}: {_clip(item)} {problem}; valid parameters: {names}")
        if key in params:
            raise SpecError(f"{op}: parameter {key!r} given twice")
        params[key] = value.strip()
    return params


def parse_spec(text: str | DegradationSpec) -> DegradationSpec:
    """Parse a spec string (or pass a :class:`DegradationSpec` through).

    Args:
        text: e.g. ``"jpeg:quality=20;gblur:sigma=2"``, a preset name, or a mix of both.

    Returns:
        The spec with presets expanded and every value checked and typed.

    Raises:
        SpecError: unknown operation (lists the valid ones), unknown parameter (lists the
            operation's parameters with their ranges), a bad value, or a spec over
            :data:`MAX_SPEC_CHARS` characters or :data:`MAX_SPEC_OPS` operations.
    """
    if isinstance(text, DegradationSpec):
        _check_op_count(len(text.calls))
        return text
    if not isinstance(text, str):
        raise TypeError(f"a spec is a str or DegradationSpec, got {type(text).__name__}")
    if len(text) > MAX_SPEC_CHARS:
        raise SpecError(
            f"the spec is {len(text)} characters long, over the limit of {MAX_SPEC_CHARS}: "
            f"use at most {MAX_SPEC_OPS} operations or presets"
        )
    calls: list[OpCall] = []
    for segment in text.split(";"):
        segment = segment.strip()
        if not segment:
            continue
        name, sep, rest = segment.partition(":")
        name = name.strip().lower()
        if not name:
            raise SpecError(f"missing operation name in {_clip(segment)}")
        if name not in ALL_OPS:
            preset = _resolve_preset(name)
            if preset is None:
                raise SpecError(_unknown_op_message(name))
            if sep and rest.strip():
                raise SpecError(
                    f"preset {name!r} takes no parameters (it means {preset}); write the ops instead"
                )
            calls.extend(preset.calls)
        else:
            op = ALL_OPS[name]
            calls.append(OpCall(name, op.validate(_parse_params(rest, name) if sep else {})))
        _check_op_count(len(calls))  # as we go: a long spec stops at the first step too many
    return DegradationSpec(tuple(calls))


def _check_op_count(n: int) -> None:
    if n > MAX_SPEC_OPS:
        raise SpecError(
            f"the spec has more than {MAX_SPEC_OPS} operations (presets count as the operations they "
            "stand for): split the work into several runs"
        )


# --------------------------------------------------------------------------------------------
# Applying
# --------------------------------------------------------------------------------------------


def run_spec(img: np.ndarray, spec: str | DegradationSpec, *, rng: np.random.Generator) -> DegradeResult:
    """Apply a spec and report every operation applied (auto parameters resolved).

    Args:
        img: RGB image, uint8 or float in [0, 1], HxWx3.
        spec: Spec text, preset name or parsed spec.
        rng: The only source of randomness.

    Returns:
        The image (same shape and dtype as ``img``; float becomes float32) and the applied ops.
    """
    spec = parse_spec(spec)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {img.shape}")
    x = as_float(img)
    h, w = x.shape[:2]
    applied: list[AppliedOp] = []
    for call in spec.calls:
        if call.name == COMPOUND_OP.name:  # inline the engine so its own steps are reported
            strength = call.params.get("strength", COMPOUND_OP.param("strength").default)
            result = compound_degrade(x, strength=strength, rng=rng, config=config_from_params(call.params))
            x = result.image
            applied += result.applied
        else:
            x, resolved = OPS[call.name].apply(x, rng=rng, params=call.params)
            applied.append(AppliedOp(call.name, resolved))
    if x.shape[:2] != (h, w):
        x = np.clip(cv2.resize(x, (w, h), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)
        applied.append(AppliedOp("resize", {"size": f"{w}x{h}", "interp": "cubic"}, stage="final"))
    if not applied:
        return DegradeResult(untouched(img), ())
    return DegradeResult(as_uint8(x) if img.dtype == np.uint8 else x, tuple(applied))


def apply_spec(img: np.ndarray, spec: str | DegradationSpec, *, rng: np.random.Generator) -> np.ndarray:
    """Apply a spec; returns an image of the same shape and dtype (see :func:`run_spec`)."""
    return run_spec(img, spec, rng=rng).image


# --------------------------------------------------------------------------------------------
# Help text
# --------------------------------------------------------------------------------------------


def describe_ops(*, full_presets: bool = False) -> str:
    """Help text listing every operation with its parameters, then the presets.

    Args:
        full_presets: List every preset with its spec instead of the compact patterns.
    """
    lines = [
        "Spec: op:param=value,param=value;op2;preset   (steps applied left to right; a parameter",
        "left out or set to 'auto' is derived from strength / drawn from the seed)",
        "e.g.  jpeg:quality=20;gblur:sigma=2      ffpp-c40;gnoise:sigma=5      df-blur-3",
        "",
        "OPERATIONS",
    ]
    by_group: dict[str, list[OpInfo]] = {}
    for op in ALL_OPS.values():
        by_group.setdefault(op.group, []).append(op)
    for group, title in _GROUP_TITLES.items():
        if group in by_group:
            lines.append(f"  {title}:")
            lines += ["    " + line for op in by_group[group] for line in op.describe().splitlines()]
    lines += ["", "PRESETS"]
    table = DEGRADATION_PRESETS
    if full_presets:
        width = max(map(len, table))
        lines += [f"  {name:<{width}}  {spec or 'none (no degradation)'}" for name, spec in table.items()]
        lines.append("  compound-<S>  compound:strength=S for any S in [0, 1]")
        return "\n".join(lines + _references())
    kinds = ",".join(DF_TYPES)
    lines += [
        "  none, ffpp-raw              no degradation",
        "  jpeg-q{100,95,90,80,70,60,50,40,30,20,10,5}   jpeg:quality=N",
        "  ffpp-c23, ffpp-c40          FaceForensics++ c23 / c40: libx264 CRF 23 / 40, one intra frame (h264)",
        f"  df-{{{kinds}}}-{{1..5}}",
        "                              DeeperForensics-1.0 distortion at level 1..5 (e.g. df-blur-3)",
        "  compound-<S>                the compound engine at strength S in [0, 1] (e.g. compound-0.5)",
        "  paper-train                 the paper's training augmentation (compound at strength 1)",
        "  gnoise-sigma{0,10,..,60}, gblur-<S>, motion-blur-<S>, resize-<S> (S = 0.0,0.2,..,1.0)",
        "                              the robustness protocol's levels",
    ]
    return "\n".join(lines + _references())


def _references() -> list[str]:
    lines = ["", "WHAT THE NAMED PRESETS REPRODUCE"]
    for names, note in PRESET_REFERENCES:
        lines += [f"  {names}", f"      {note}"]
    return lines
