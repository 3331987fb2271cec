"""Degradation lab: named operations with explicit strengths, specs, presets and the paper's engine.

Quick use::

    from forensic.degrade import degrade
    out = degrade(img, "jpeg:quality=20;gblur:sigma=2", seed=0)   # a spec (or a preset: "ffpp-c40")
    out = degrade(img, compound=0.5, seed=0)                      # the paper's compound engine

Modules: :mod:`~forensic.degrade.ops` (one function per operation, float32 [0, 1] in and out),
:mod:`~forensic.degrade.compound` (the training augmentation), :mod:`~forensic.degrade.spec`
(``op:param=value;...`` and presets), :mod:`~forensic.degrade.protocol` (robustness sweeps) over
the families of :mod:`~forensic.degrade.families`.

:data:`DEGRADATION_PRESETS` are named degradation specs (``ffpp-c40``); ``forensic.PRESETS`` are
model presets, a different thing.
"""

from __future__ import annotations

import operator

import numpy as np

from forensic.degrade.compound import CompoundConfig, CompoundResult, compound_degrade
from forensic.degrade.ops import (
    DF_TYPES,
    OPS,
    PAPER_OPS,
    AppliedOp,
    DegradeResult,
    OpInfo,
    ParamInfo,
    SpecError,
    psnr,
)
from forensic.degrade.ops.pixels import ssim
from forensic.degrade.families import FAMILIES, SWEEP_STRENGTHS
from forensic.degrade.protocol import ProtocolLevel, at_strength, protocol_levels
from forensic.degrade.spec import (
    ALL_OPS,
    DEGRADATION_PRESETS,
    MAX_SPEC_CHARS,
    MAX_SPEC_OPS,
    DegradationSpec,
    OpCall,
    PRESET_REFERENCES,
    apply_spec,
    describe_ops,
    parse_spec,
    run_spec,
)

__all__ = [
    "ALL_OPS",
    "DEGRADATION_PRESETS",
    "DF_TYPES",
    "FAMILIES",
    "MAX_SEED",
    "MAX_SPEC_CHARS",
    "MAX_SPEC_OPS",
    "OPS",
    "PAPER_OPS",
    "PRESET_REFERENCES",
    "SWEEP_STRENGTHS",
    "AppliedOp",
    "CompoundConfig",
    "CompoundResult",
    "DegradationSpec",
    "DegradeResult",
    "OpCall",
    "OpInfo",
    "ParamInfo",
    "ProtocolLevel",
    "SpecError",
    "apply_spec",
    "at_strength",
    "check_seed",
    "compound_degrade",
    "degrade",
    "degrade_result",
    "describe_ops",
    "parse_spec",
    "protocol_levels",
    "psnr",
    "run_spec",
    "ssim",
]


#: Seeds are whole numbers in 0..MAX_SEED. numpy accepts any non-negative integer, but a seed must
#: also survive JSON (64-bit integers in orjson, which Gradio uses) and a browser's number field
#: (exact only up to 2**53); 32 bits is what the trainer's per-sample seeds and most tools use.
MAX_SEED: int = 2**32 - 1


def check_seed(seed: object) -> int:
    """The seed as an ``int`` if it is a whole number in 0..:data:`MAX_SEED`.

    Raises:
        ValueError: anything else (a negative or too large number, a fraction, a bool, text),
            with a one-line message naming the valid range.
    """
    value = None if isinstance(seed, (bool, np.bool_)) else _as_index(seed)
    if value is not None and 0 <= value <= MAX_SEED:
        return value
    if value is None:
        shown = repr(seed)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."  # never echo a huge input
    else:
        shown = str(value) if abs(value) < 10**30 else f"a {value.bit_length()}-bit number"
    raise ValueError(f"the seed must be a whole number from 0 to {MAX_SEED}, got {shown}")


def _as_index(seed: object) -> int | None:
    try:
        return int(operator.index(seed))  # ints and numpy integers, never floats or text
    except TypeError:
        return None


def degrade_result(
    image: np.ndarray,
    spec: str | DegradationSpec | None = None,
    *,
    compound: float | None = None,
    seed: int | np.random.Generator = 0,
) -> DegradeResult:
    """Like :func:`degrade`, and also returns the list of operations applied (for a UI)."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{getattr(image, 'dtype', type(image).__name__)} {getattr(image, 'shape', '')}"
        raise ValueError(
            f"degrade expects an RGB uint8 HxWx3 array (see forensic.images.load_image), got {got}"
        )
    if spec is not None and compound is not None:
        raise ValueError(
            "give either a spec or a compound strength, not both (or compound:strength=S in the spec)"
        )
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(check_seed(seed))
    if compound is not None:
        return compound_degrade(image, strength=float(compound), rng=rng)
    if spec is None:
        return DegradeResult(image.copy(), ())
    return run_spec(image, spec, rng=rng)


def degrade(
    image: np.ndarray,
    spec: str | DegradationSpec | None = None,
    *,
    compound: float | None = None,
    seed: int | np.random.Generator = 0,
) -> np.ndarray:
    """Degrade an RGB uint8 image by a spec or by the compound engine.

    Args:
        image: RGB uint8 array, HxWx3.
        spec: A spec (``"jpeg:quality=20;gblur:sigma=2"``), a preset (``"ffpp-c40"``) or a parsed
            :class:`DegradationSpec`.
        compound: Strength in [0, 1] of the paper's compound engine (0 = untouched).
        seed: Seed (a whole number in 0..:data:`MAX_SEED`) or generator; the same seed gives the
            same bytes.

    Returns:
        A new RGB uint8 array of the same shape (a copy if neither ``spec`` nor ``compound``).

    Raises:
        SpecError: an invalid spec (the message lists what is valid).
        ValueError: both ``spec`` and ``compound``, a strength outside [0, 1], a seed outside
            0..:data:`MAX_SEED`, or a bad image.
    """
    return degrade_result(image, spec, compound=compound, seed=seed).image
