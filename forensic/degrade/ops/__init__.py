"""Single degradation operations on float32 RGB images in [0, 1] (HxWx3).

Every operation is an :class:`OpInfo` in the registry :data:`OPS`, callable as
``op(img, *, rng, **params) -> np.ndarray``. Parameters are declared as :class:`ParamInfo` with a
type, range and default. A default of ``None`` means *auto*: the value is derived from ``strength``
(and, where the paper draws a random value, from ``rng``). Random sub-choices (which kernel,
which noise type) are explicit choice parameters whose default ``random``/``auto`` draws from
``rng``. An explicit value always wins over ``strength``.

Operations 0-14 of the paper's compound engine are flagged with ``paper_index`` (see
:data:`PAPER_OPS`); the others are the standard single degradations users know (JPEG quality,
Gaussian blur sigma, ...) and the DeeperForensics-1.0 distortions at levels 1-5.

Layout: :mod:`.params` (:class:`ParamInfo`), :mod:`.registry` (:class:`OpInfo`; :class:`Params`,
the ``p`` an operation reads its values from; :func:`register` and :data:`OPS`), :mod:`.pixels`
(array helpers), then one module per family: :mod:`.blurs`, :mod:`.noises`, :mod:`.geometry`,
:mod:`.compression`, :mod:`.colours`, :mod:`.artefacts`, :mod:`.distractors`,
:mod:`.deeperforensics`. A family registers its operations when imported; the imports below,
in this order, fix the order of :data:`OPS` (and so of ``--list`` and the UI). An operation is
reached through :data:`OPS` by its name (``OPS["gblur"]``).
"""

from __future__ import annotations

from forensic.degrade.ops.params import ParamInfo, SpecError, format_value
from forensic.degrade.ops.registry import (
    OPS,
    AppliedOp,
    DegradeResult,
    OpInfo,
    Params,
    make_op,
    register,
    strength_param,
)
from forensic.degrade.ops.pixels import as_float, as_uint8, psnr, untouched

# the families register their operations when imported: this order is the order of OPS
from forensic.degrade.ops import blurs, noises, geometry, compression, colours, artefacts, distractors, deeperforensics  # noqa: F401  # isort: skip
from forensic.degrade.ops.deeperforensics import DF_LEVELS, DF_TYPES
from forensic.degrade.ops.geometry import INTERPOLATIONS, resize_to

__all__ = [
    "DF_LEVELS",
    "DF_TYPES",
    "INTERPOLATIONS",
    "OPS",
    "PAPER_OPS",
    "AppliedOp",
    "DegradeResult",
    "OpInfo",
    "ParamInfo",
    "Params",
    "SpecError",
    "as_float",
    "as_uint8",
    "format_value",
    "make_op",
    "psnr",
    "register",
    "resize_to",
    "strength_param",
    "untouched",
]

PAPER_OPS: tuple[str, ...] = tuple(
    op.name for op in sorted((o for o in OPS.values() if o.paper_index is not None), key=lambda o: o.paper_index)
)
"""The paper's 15 compound operations, in the order of its table (index 0..14)."""
