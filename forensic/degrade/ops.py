"""Single degradation operations on float32 RGB images in [0, 1] (HxWx3).

Every operation is an :class:`OpInfo` in the module-level registry :data:`OPS`, callable as
``op(img, *, rng, **params) -> np.ndarray``. Parameters are declared as :class:`ParamInfo` with a
type, range and default. A default of ``None`` means *auto*: the value is derived from ``strength``
(and, where the paper draws a random value, from ``rng``). Random sub-choices (which kernel,
which noise type) are explicit choice parameters whose default ``random``/``auto`` draws from
``rng``. An explicit value always wins over ``strength``.

Operations 0-14 of the paper's compound engine are flagged with ``paper_index`` (see
:data:`PAPER_OPS`); the others are the standard single degradations users know (JPEG quality,
Gaussian blur sigma, ...) and the DeeperForensics-1.0 distortions at levels 1-5.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import cv2
import numpy as np

__all__ = [
    "OPS",
    "PAPER_OPS",
    "AppliedOp",
    "DegradeResult",
    "OpInfo",
    "ParamInfo",
    "SpecError",
    "as_float",
    "as_uint8",
    "crf_to_jpeg_quality",
    "format_value",
    "psnr",
    "untouched",
]

_RANDOM_WORDS = ("random", "auto")
_INTERP = {
    "nearest": cv2.INTER_NEAREST,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
}
# Spec syntax characters cannot appear in free-text values.
_FORBIDDEN_TEXT = set(";,=:")


class SpecError(ValueError):
    """A degradation spec, or an operation's parameters, are invalid (message says what is valid)."""


# --------------------------------------------------------------------------------------------
# Declarations
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamInfo:
    """One parameter of an operation.

    Attributes:
        name: Parameter name as written in a spec (``quality``).
        type: ``int``, ``float`` or ``str``.
        default: Default value; ``None`` means auto (derived from ``strength`` and/or ``rng``).
            For choice parameters the auto default is spelled ``"random"`` or ``"auto"``.
        min: Inclusive lower bound for numbers.
        max: Inclusive upper bound for numbers.
        help: One line for ``--help``.
        choices: Allowed words for a ``str`` choice parameter (empty: free text).
    """

    name: str
    type: type
    default: Any
    min: float | None = None
    max: float | None = None
    help: str = ""
    choices: tuple[str, ...] = ()

    @property
    def is_auto_default(self) -> bool:
        return self.default is None or self.default in _RANDOM_WORDS

    def range_text(self) -> str:
        """Human-readable type and range, e.g. ``int 1..100`` or ``one of random|gauss|box``."""
        if self.choices:
            return "one of " + "|".join(self.choices)
        if self.type is str:
            return "text"
        kind = self.type.__name__
        return f"{kind} {format_value(self.min)}..{format_value(self.max)}"

    def describe(self) -> str:
        default = "auto" if self.default is None else format_value(self.default)
        return f"{self.name}: {self.range_text()} (default {default}) - {self.help}"

    def coerce(self, value: Any, *, op: str) -> Any:
        """Check and convert one value (a spec string or a Python value).

        Returns ``None`` for an auto value of a numeric parameter, the default word for a
        ``random``/``auto`` choice. Raises :class:`SpecError` with the valid range otherwise.
        """
        where = f"{op}: parameter {self.name!r}"
        if isinstance(value, str):
            text = value.strip()
            if text.lower() in _RANDOM_WORDS and self.is_auto_default:
                return None if self.default is None else self.default
        else:
            text = None
            if value is None and self.is_auto_default:
                return None if self.default is None else self.default
        if self.choices:
            word = str(value).strip().lower()
            if word not in self.choices:
                raise SpecError(f"{where} must be {self.range_text()}, got {value!r}")
            return word
        if self.type is str:
            if text is None or not text or len(text) > 64 or _FORBIDDEN_TEXT & set(text):
                raise SpecError(f"{where} must be 1-64 characters without ; , = :, got {value!r}")
            return text
        number = self._to_number(value if text is None else text, where)
        if (self.min is not None and number < self.min) or (self.max is not None and number > self.max):
            raise SpecError(f"{where} must be {self.range_text()}, got {format_value(number)}")
        return number

    def _to_number(self, value: Any, where: str) -> int | float:
        if isinstance(value, (bool, np.bool_)):
            raise SpecError(f"{where} must be {self.range_text()}, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise SpecError(f"{where} must be {self.range_text()}, got {value!r}") from None
        if not math.isfinite(number):
            raise SpecError(f"{where} must be a finite number, got {value!r}")
        if self.type is int:
            if number != int(number):
                raise SpecError(f"{where} must be an integer ({self.range_text()}), got {value!r}")
            return int(number)
        return number


@dataclass(frozen=True)
class AppliedOp:
    """One operation as it was actually applied, with every auto parameter resolved.

    Attributes:
        name: Operation name (a key of :data:`OPS`).
        params: Resolved parameter values (what the user would write to reproduce it), plus a
            few informative derived values (``jpeg_quality`` for an H.264 CRF, the prelude's
            ``steps``).
        stage: ``"op"`` for a normal step; the compound engine also uses ``"prelude"`` and
            ``"final"`` (the resize back to the input size).
    """

    name: str
    params: Mapping[str, Any]
    stage: str = "op"

    def __str__(self) -> str:
        if not self.params:
            return self.name
        # rounded for display; ``params`` keeps the exact values
        inner = ",".join(f"{k}={_display(v)}" for k, v in self.params.items())
        return f"{self.name}:{inner}"


def _display(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, tuple):  # e.g. the prelude's steps
        return "(" + " > ".join(map(str, value)) + ")"
    return str(value)


@dataclass(frozen=True)
class DegradeResult:
    """A degraded image and the list of operations applied to it, in order."""

    image: np.ndarray
    applied: tuple[AppliedOp, ...] = ()


@dataclass(frozen=True)
class OpInfo:
    """A registered operation: its name, parameters and implementation.

    Call it like a function: ``OPS["jpeg"](img, rng=rng, quality=20)``.
    """

    name: str
    description: str
    params: tuple[ParamInfo, ...]
    fn: Callable[[np.ndarray, _Params], np.ndarray] = field(repr=False, compare=False)
    group: str = "misc"
    paper_index: int | None = None

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def has_strength(self) -> bool:
        return "strength" in self.param_names

    def param(self, name: str) -> ParamInfo:
        for info in self.params:
            if info.name == name:
                return info
        raise SpecError(self._unknown_param_message(name))

    def _unknown_param_message(self, name: str) -> str:
        if not self.params:
            return f"{self.name}: takes no parameters, got {name!r}"
        valid = "; ".join(f"{p.name} ({p.range_text()})" for p in self.params)
        return f"{self.name}: unknown parameter {name!r}; valid parameters: {valid}"

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Check names, types and ranges; return explicit values in declaration order.

        Auto values (``None``, ``auto``, ``random``) are dropped: absent means auto.

        Raises:
            SpecError: unknown parameter (message lists the valid ones) or a bad value.
        """
        for name in params:
            self.param(name)  # raises on unknown names
        out: dict[str, Any] = {}
        for info in self.params:
            if info.name in params:
                value = info.coerce(params[info.name], op=self.name)
                is_auto_word = bool(info.choices) and value == info.default and info.is_auto_default
                if value is not None and not is_auto_word:
                    out[info.name] = value
        return out

    def apply(
        self, img: np.ndarray, *, rng: np.random.Generator, params: Mapping[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Apply the operation and report the parameters it actually used.

        Args:
            img: float32 RGB image in [0, 1], HxWx3.
            rng: The only source of randomness.
            params: Explicit parameter values; missing ones are auto.

        Returns:
            The float32 image clipped to [0, 1] (same shape except for ``resize``) and the
            resolved parameters.
        """
        _check_float_image(img, self.name)
        resolver = _Params(self, self.validate(params or {}), rng)
        out = np.asarray(self.fn(img, resolver), dtype=np.float32)
        np.clip(out, 0.0, 1.0, out=out)
        # declared parameters first, in declaration order, then informative extras
        order = {name: i for i, name in enumerate(self.param_names)}
        resolved = dict(sorted(resolver.resolved.items(), key=lambda kv: order.get(kv[0], len(order))))
        return out, resolved

    def __call__(self, img: np.ndarray, *, rng: np.random.Generator, **params: Any) -> np.ndarray:
        return self.apply(img, rng=rng, params=params)[0]

    def describe(self) -> str:
        """Multi-line help: name, description, one line per parameter."""
        tag = f" [paper op {self.paper_index}]" if self.paper_index is not None else ""
        lines = [f"{self.name}{tag}: {self.description}"]
        lines += [f"    {p.describe()}" for p in self.params]
        return "\n".join(lines)


class _Params:
    """Resolves auto parameters lazily and records every value an operation used."""

    def __init__(self, op: OpInfo, values: Mapping[str, Any], rng: np.random.Generator) -> None:
        self.op = op
        self.rng = rng
        self._values = values
        self.resolved: dict[str, Any] = {}

    def given(self, name: str) -> bool:
        """Whether the caller set ``name`` explicitly."""
        return name in self._values

    def get(self, name: str, auto: Callable[[], Any] | None = None) -> Any:
        """The explicit value, else the declared default, else ``auto()``."""
        if name in self.resolved:
            return self.resolved[name]
        info = self.op.param(name)
        value = self._values.get(name)
        if value is None:
            if not info.is_auto_default:
                value = info.default
            elif auto is None:  # pragma: no cover - a bug in an op definition
                raise RuntimeError(f"{self.op.name}: no auto rule for {name!r}")
            else:
                value = auto()
        if isinstance(value, np.generic):
            value = value.item()
        if info.type is int and not info.choices:
            value = int(value)
        elif info.type is float:
            value = float(value)
        self.resolved[name] = value
        return value

    def choice(self, name: str, weights: Mapping[str, float] | None = None) -> str:
        """A choice parameter; ``random``/``auto`` draws from ``weights`` (default: uniform)."""
        info = self.op.param(name)
        value = self._values.get(name, info.default)
        if value in _RANDOM_WORDS:
            options = weights or {c: 1.0 for c in info.choices if c not in _RANDOM_WORDS}
            keys = list(options)
            probs = np.asarray([options[k] for k in keys], dtype=np.float64)
            value = keys[int(self.rng.choice(len(keys), p=probs / probs.sum()))]
        self.resolved[name] = value
        return value

    def set(self, name: str, value: Any) -> Any:
        """Record a value decided by the operation itself (e.g. a mode implied by other params)."""
        self.resolved[name] = value
        return value

    @property
    def strength(self) -> float:
        return self.get("strength")


_REGISTRY: dict[str, OpInfo] = {}


def make_op(
    name: str,
    description: str,
    params: Sequence[ParamInfo] = (),
    *,
    group: str = "misc",
    paper_index: int | None = None,
) -> Callable[[Callable[[np.ndarray, _Params], np.ndarray]], OpInfo]:
    """Decorator turning ``fn(img, p) -> img`` into an :class:`OpInfo` (not registered)."""

    def wrap(fn: Callable[[np.ndarray, _Params], np.ndarray]) -> OpInfo:
        return OpInfo(name, description, tuple(params), fn, group=group, paper_index=paper_index)

    return wrap


def register(
    name: str,
    description: str,
    params: Sequence[ParamInfo] = (),
    *,
    group: str = "misc",
    paper_index: int | None = None,
) -> Callable[[Callable[[np.ndarray, _Params], np.ndarray]], OpInfo]:
    """Like :func:`make_op`, and adds the operation to :data:`OPS`."""

    def wrap(fn: Callable[[np.ndarray, _Params], np.ndarray]) -> OpInfo:
        info = make_op(name, description, params, group=group, paper_index=paper_index)(fn)
        if name in _REGISTRY:  # pragma: no cover - a duplicate is a bug in this module
            raise RuntimeError(f"operation {name!r} registered twice")
        _REGISTRY[name] = info
        return info

    return wrap


def _strength(help_text: str = "severity; used only for the parameters left on auto") -> ParamInfo:
    return ParamInfo("strength", float, 0.5, 0.0, 1.0, help_text)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def format_value(value: Any) -> str:
    """Shortest text that parses back to the same number."""
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    if isinstance(value, tuple):
        return "x".join(format_value(v) for v in value)
    return str(value)


def _check_float_image(img: np.ndarray, op: str) -> None:
    if not isinstance(img, np.ndarray) or img.dtype != np.float32 or img.ndim != 3 or img.shape[2] != 3:
        got = f"{getattr(img, 'dtype', type(img).__name__)} {getattr(img, 'shape', '')}"
        raise TypeError(f"{op}: expects a float32 HxWx3 image in [0, 1] (use as_float), got {got}")


def as_float(img: np.ndarray) -> np.ndarray:
    """uint8 (0..255) or float image -> a new float32 array in [0, 1]."""
    if img.dtype == np.uint8:
        return img.astype(np.float32) * np.float32(1.0 / 255.0)
    if np.issubdtype(img.dtype, np.floating):
        return np.clip(img, 0.0, 1.0).astype(np.float32)
    raise TypeError(f"expected a uint8 or float image, got dtype {img.dtype}")


def as_uint8(img: np.ndarray) -> np.ndarray:
    """float image in [0, 1] -> uint8, rounding to nearest (exact inverse of :func:`as_float`)."""
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def untouched(img: np.ndarray) -> np.ndarray:
    """The result of degrading by nothing: a uint8 copy for uint8 input (same bytes), else float32."""
    return img.copy() if img.dtype == np.uint8 else as_float(img)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB between two images of the same shape (inf if equal).

    Both uint8 (peak 255) or both float in [0, 1] (peak 1). scikit-image has one, but it is a
    test-only dependency here and warns on identical inputs.
    """
    if a.shape != b.shape:
        raise ValueError(f"psnr needs equal shapes, got {a.shape} and {b.shape}")
    if a.size == 0:
        raise ValueError("psnr needs non-empty images")
    peak = 255.0 if a.dtype == np.uint8 else 1.0
    # In blocks of rows: whole-image float64 copies of a 64 MP photo would take 4.6 GB at once.
    rows = a.reshape(len(a), -1) if a.ndim > 1 else a.reshape(1, -1)
    other = b.reshape(rows.shape)
    step = max(1, _PSNR_BLOCK_VALUES // rows.shape[1])
    total = 0.0
    for start in range(0, rows.shape[0], step):
        diff = rows[start : start + step].astype(np.float64) - other[start : start + step]
        total += float(np.einsum("ij,ij->", diff, diff))
    mse = total / a.size
    return math.inf if mse == 0.0 else 10.0 * math.log10(peak * peak / mse)


_PSNR_BLOCK_VALUES = 1 << 20  # 8 MB of float64 per block


def _odd(k: float, minimum: int = 3) -> int:
    k = max(minimum, int(round(k)))
    return k if k % 2 else k + 1


def _luma(x: np.ndarray) -> np.ndarray:
    """BT.601 luma, HxW."""
    return x @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32)


def _resize(x: np.ndarray, size_hw: tuple[int, int], interp: str) -> np.ndarray:
    h, w = size_hw
    if (h, w) == x.shape[:2]:
        return x
    return cv2.resize(x, (w, h), interpolation=_INTERP[interp])


def _jpeg_roundtrip(x: np.ndarray, quality: int) -> np.ndarray:
    """A real JPEG encode/decode (libjpeg through OpenCV, 4:2:0 chroma), so 8x8 blocking is real."""
    bgr = cv2.cvtColor(as_uint8(x), cv2.COLOR_RGB2BGR)  # OpenCV's encoder expects BGR
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - libjpeg refusing a valid uint8 image
        raise RuntimeError("JPEG encoding failed")
    dec = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return cv2.cvtColor(dec, cv2.COLOR_BGR2RGB).astype(np.float32) * np.float32(1.0 / 255.0)


def crf_to_jpeg_quality(crf: float) -> int:
    """Map an H.264 CRF to a JPEG quality giving a comparable loss on a single frame.

    An approximation (no motion compensation, no in-loop deblocking): linear in CRF, anchored so
    that CRF 23 (FaceForensics++ c23, visually near-lossless) -> quality 85 and CRF 40 (c40,
    heavy blocking and blur) -> quality 12.
    """
    return int(np.clip(round(98.0 - 4.3 * (crf - 20.0)), 5, 95))


# --------------------------------------------------------------------------------------------
# Blur (paper op 0 smoothing, op 1 motion blur, and the single standard blurs)
# --------------------------------------------------------------------------------------------


def _aniso_kernel(sigma_major: float, sigma_minor: float, angle_deg: float) -> np.ndarray:
    radius = max(1, int(math.ceil(3.0 * sigma_major)))
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float32)
    theta = math.radians(angle_deg)
    u = xx * math.cos(theta) + yy * math.sin(theta)
    v = -xx * math.sin(theta) + yy * math.cos(theta)
    k = np.exp(-0.5 * ((u / max(sigma_major, 0.3)) ** 2 + (v / max(sigma_minor, 0.3)) ** 2))
    return (k / k.sum()).astype(np.float32)


def _aniso_blur(x: np.ndarray, sigma: float, ratio: float, angle: float) -> np.ndarray:
    if sigma <= 0:
        return x
    return cv2.filter2D(x, -1, _aniso_kernel(sigma, sigma * ratio, angle), borderType=cv2.BORDER_REFLECT)


def _gauss_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    return x if sigma <= 0 else cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def _box_blur(x: np.ndarray, size: int) -> np.ndarray:
    return x if size <= 1 else cv2.blur(x, (size, size), borderType=cv2.BORDER_REFLECT)


@register(
    "smooth",
    "Smoothing: anisotropic Gaussian, isotropic Gaussian or box blur, kernel width up to 30*strength",
    [
        ParamInfo(
            "kernel", str, "random", help="which kernel (random: uniform)", choices=("random", "aniso", "gauss", "box")
        ),
        ParamInfo("size", int, None, 1, 99, "kernel width in px (auto: odd, up to 30*strength)"),
        ParamInfo("ratio", float, None, 0.05, 1.0, "aniso: minor/major axis ratio (auto: 0.2..1)"),
        ParamInfo("angle", float, None, 0.0, 180.0, "aniso: major axis angle in degrees (auto: random)"),
        _strength(),
    ],
    group="blur",
    paper_index=0,
)
def smooth(x: np.ndarray, p: _Params) -> np.ndarray:
    kernel = p.choice("kernel")
    size = p.get("size", lambda: _odd(3 + p.rng.random() * max(0.0, 30.0 * p.strength - 3.0)))
    if kernel == "box":
        return _box_blur(x, size)
    if kernel == "gauss":
        return cv2.GaussianBlur(x, (_odd(size, 1), _odd(size, 1)), size / 6.0, borderType=cv2.BORDER_REFLECT)
    ratio = p.get("ratio", lambda: p.rng.uniform(0.2, 1.0))
    angle = p.get("angle", lambda: p.rng.uniform(0.0, 180.0))
    return _aniso_blur(x, size / 6.0, ratio, angle)


@register(
    "gblur",
    "Isotropic Gaussian blur",
    [ParamInfo("sigma", float, None, 0.0, 50.0, "std in px (auto: 4*strength)"), _strength()],
    group="blur",
)
def gblur(x: np.ndarray, p: _Params) -> np.ndarray:
    return _gauss_blur(x, p.get("sigma", lambda: 4.0 * p.strength))


@register(
    "aniso-blur",
    "Anisotropic (elliptical, rotated) Gaussian blur",
    [
        ParamInfo("sigma", float, None, 0.0, 30.0, "major-axis std in px (auto: 5*strength)"),
        ParamInfo("ratio", float, None, 0.05, 1.0, "minor/major axis ratio (auto: 0.2..1)"),
        ParamInfo("angle", float, None, 0.0, 180.0, "major axis angle in degrees (auto: random)"),
        _strength(),
    ],
    group="blur",
)
def aniso_blur(x: np.ndarray, p: _Params) -> np.ndarray:
    sigma = p.get("sigma", lambda: 5.0 * p.strength)
    ratio = p.get("ratio", lambda: p.rng.uniform(0.2, 1.0))
    angle = p.get("angle", lambda: p.rng.uniform(0.0, 180.0))
    return _aniso_blur(x, sigma, ratio, angle)


@register(
    "box-blur",
    "Box (mean) filter",
    [ParamInfo("size", int, None, 1, 99, "kernel width in px (auto: 1 + 2*round(7*strength))"), _strength()],
    group="blur",
)
def box_blur(x: np.ndarray, p: _Params) -> np.ndarray:
    return _box_blur(x, p.get("size", lambda: 1 + 2 * round(7.0 * p.strength)))


def _motion_kernel(length: int, angle: float) -> np.ndarray:
    k = np.zeros((length, length), dtype=np.float32)
    k[length // 2, :] = 1.0
    centre = ((length - 1) / 2.0, (length - 1) / 2.0)
    rotation = cv2.getRotationMatrix2D(centre, angle, 1.0)
    k = cv2.warpAffine(k, rotation, (length, length), flags=cv2.INTER_LINEAR)
    return k / max(float(k.sum()), 1e-6)


@register(
    "motion-blur",
    "Linear motion blur at an angle, length up to ~12*strength",
    [
        ParamInfo("length", int, None, 1, 151, "kernel length in px (auto: odd, 3..12*strength)"),
        ParamInfo("angle", float, None, 0.0, 180.0, "direction in degrees (auto: random)"),
        _strength(),
    ],
    group="blur",
    paper_index=1,
)
def motion_blur(x: np.ndarray, p: _Params) -> np.ndarray:
    length = p.get("length", lambda: _odd(3 + p.rng.random() * max(0.0, 12.0 * p.strength - 3.0)))
    angle = p.get("angle", lambda: p.rng.uniform(0.0, 180.0))
    if length <= 1:
        return x
    return cv2.filter2D(x, -1, _motion_kernel(length, angle), borderType=cv2.BORDER_REFLECT)


# --------------------------------------------------------------------------------------------
# Noise (paper op 2 mixed noise, op 5 Gaussian noise)
# --------------------------------------------------------------------------------------------


def _speckle(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return x + x * (np.float32(sigma) * rng.standard_normal(x.shape, dtype=np.float32))


def _poisson(x: np.ndarray, peak: float, rng: np.random.Generator) -> np.ndarray:
    return (rng.poisson(x * np.float32(peak)) / peak).astype(np.float32)


def _salt_pepper(x: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    h, w = x.shape[:2]
    hit = rng.random((h, w), dtype=np.float32) < amount
    salt = rng.random((h, w), dtype=np.float32) < 0.5
    out = x.copy()
    out[hit & salt] = 1.0
    out[hit & ~salt] = 0.0
    return out


# strength -> noise level, shared by the single ops and the paper's mixed-noise op
def _speckle_sigma_for(strength: float) -> float:
    return 0.35 * strength


def _poisson_peak_for(strength: float) -> float:
    # photons at white; the noise std at intensity v is sqrt(v / peak) ~ 0.22 * strength * sqrt(v)
    return min(1e6, 20.0 / max(strength, 1e-3) ** 2)


def _salt_pepper_amount_for(strength: float) -> float:
    return 0.1 * strength


@register(
    "speckle",
    "Multiplicative (speckle) noise: x + x*N(0, sigma)",
    [ParamInfo("sigma", float, None, 0.0, 2.0, "relative noise std (auto: 0.35*strength)"), _strength()],
    group="noise",
)
def speckle(x: np.ndarray, p: _Params) -> np.ndarray:
    return _speckle(x, p.get("sigma", lambda: _speckle_sigma_for(p.strength)), p.rng)


@register(
    "poisson",
    "Poisson (shot) noise with `peak` photons at white",
    [ParamInfo("peak", float, None, 1.0, 1e6, "photons at intensity 1 (auto: 20/strength^2)"), _strength()],
    group="noise",
)
def poisson(x: np.ndarray, p: _Params) -> np.ndarray:
    return _poisson(x, p.get("peak", lambda: _poisson_peak_for(p.strength)), p.rng)


@register(
    "salt-pepper",
    "Salt-and-pepper noise: a fraction `amount` of pixels set to black or white",
    [ParamInfo("amount", float, None, 0.0, 1.0, "fraction of pixels hit (auto: 0.1*strength)"), _strength()],
    group="noise",
)
def salt_pepper(x: np.ndarray, p: _Params) -> np.ndarray:
    return _salt_pepper(x, p.get("amount", lambda: _salt_pepper_amount_for(p.strength)), p.rng)


@register(
    "noise",
    "One of speckle, Poisson or salt-and-pepper noise at a level set by strength",
    [
        ParamInfo(
            "kind",
            str,
            "random",
            help="which noise (random: uniform)",
            choices=("random", "speckle", "poisson", "salt-pepper"),
        ),
        _strength(),
    ],
    group="noise",
    paper_index=2,
)
def noise(x: np.ndarray, p: _Params) -> np.ndarray:
    kind = p.choice("kind")
    if kind == "speckle":
        return _speckle(x, _speckle_sigma_for(p.strength), p.rng)
    if kind == "poisson":
        return _poisson(x, _poisson_peak_for(p.strength), p.rng)
    return _salt_pepper(x, _salt_pepper_amount_for(p.strength), p.rng)


@register(
    "gnoise",
    "Additive Gaussian noise, sigma in 0..255 units",
    [
        ParamInfo(
            "sigma", float, None, 0.0, 255.0, "std in 0..255 units (auto: U(60..100) or U(2..100), times strength)"
        ),
        ParamInfo(
            "mode",
            str,
            "auto",
            help="pixel: independent per pixel and channel; shared: same for all channels; correlated: "
            "spatially smoothed (auto: pixel when sigma is given, else random like the paper)",
            choices=("auto", "pixel", "shared", "correlated"),
        ),
        _strength(),
    ],
    group="noise",
    paper_index=5,
)
def gnoise(x: np.ndarray, p: _Params) -> np.ndarray:
    if p.given("sigma") and not p.given("mode"):
        mode = p.set("mode", "pixel")
    else:
        mode = p.choice("mode")

    def paper_sigma() -> float:
        low = 60.0 if p.rng.random() < 0.5 else 2.0
        return p.rng.uniform(low, 100.0) * p.strength

    sigma = p.get("sigma", paper_sigma) / 255.0
    h, w = x.shape[:2]
    if mode == "shared":
        n = _normal(p.rng, (h, w, 1))
    elif mode == "correlated":
        n = cv2.GaussianBlur(_normal(p.rng, (h, w, 3)), (0, 0), 1.5, borderType=cv2.BORDER_REFLECT)
        n /= max(float(n.std()), 1e-6)  # keep the per-pixel std equal to sigma
    else:
        n = _normal(p.rng, (h, w, 3))
    return x + np.float32(sigma) * n


def _normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal float32 samples (float32 generation is ~2x faster than float64)."""
    return rng.standard_normal(shape, dtype=np.float32)


# --------------------------------------------------------------------------------------------
# Geometry and compression (paper op 3 resize, op 6 JPEG, op 7 chroma 4:2:0)
# --------------------------------------------------------------------------------------------


@register(
    "resize",
    "Resize by `scale` (the spec layer resizes back to the input size at the end)",
    [
        ParamInfo("scale", float, None, 0.02, 4.0, "size factor (auto: down to 0.25/strength or up to 1+strength)"),
        ParamInfo("interp", str, "random", help="interpolation (random: uniform)", choices=("random", *_INTERP)),
        ParamInfo(
            "direction", str, "random", help="for an auto scale: down, up or random", choices=("random", "down", "up")
        ),
        _strength(),
    ],
    group="geometry",
    paper_index=3,
)
def resize(x: np.ndarray, p: _Params) -> np.ndarray:
    def auto_scale() -> float:
        direction = p.choice("direction")
        u = p.rng.random()
        if direction == "up":
            return 1.0 + u * p.strength
        low = min(1.0, 0.25 / max(p.strength, 1e-6))
        return low + u * (1.0 - low)

    scale = p.get("scale", auto_scale)
    interp = p.choice("interp")
    h, w = x.shape[:2]
    # never below 8 px a side (or the input's size if smaller): later ops need a real image
    size = (max(min(h, 8), round(h * scale)), max(min(w, 8), round(w * scale)))
    return _resize(x, size, interp)


@register(
    "jpeg",
    "Real JPEG encode/decode (libjpeg, 4:2:0) at a quality",
    [ParamInfo("quality", int, None, 1, 100, "JPEG quality (auto: uniform 10..95, as the paper)")],
    group="compression",
    paper_index=6,
)
def jpeg(x: np.ndarray, p: _Params) -> np.ndarray:
    return _jpeg_roundtrip(x, p.get("quality", lambda: p.rng.integers(10, 96)))


@register(
    "prelude",
    "The paper's JPEG/resize prelude: 1-5 cycles alternating JPEG (quality min_quality..95) and a resize "
    "to a fraction of the input size (down to 0.25/strength, random interpolation), starting with either",
    [
        ParamInfo("cycles", int, None, 1, 10, "JPEG + resize cycles (auto: 1..5)"),
        ParamInfo("start", str, "random", help="first step", choices=("random", "jpeg", "resize")),
        ParamInfo("min_quality", int, 10, 1, 95, "lowest JPEG quality drawn (the highest is 95)"),
        _strength(),
    ],
    group="compression",
)
def prelude(x: np.ndarray, p: _Params) -> np.ndarray:
    cycles = p.get("cycles", lambda: p.rng.integers(1, 6))
    jpeg_turn = p.choice("start") == "jpeg"
    min_quality = p.get("min_quality")
    low_scale = min(1.0, 0.25 / max(p.strength, 1e-6))
    h, w = x.shape[:2]
    steps: list[str] = []
    for _ in range(2 * cycles):
        if jpeg_turn:
            quality = int(p.rng.integers(min_quality, 96))
            x = _jpeg_roundtrip(x, quality)
            steps.append(f"jpeg:quality={quality}")
        else:
            # relative to the input size, so successive cycles do not shrink the image to nothing
            scale = float(p.rng.uniform(low_scale, 1.0))
            interp = tuple(_INTERP)[int(p.rng.integers(len(_INTERP)))]
            x = _resize(x, (max(min(h, 8), round(h * scale)), max(min(w, 8), round(w * scale))), interp)
            steps.append(f"resize:scale={scale:.3g},interp={interp}")
        jpeg_turn = not jpeg_turn
    p.set("steps", tuple(steps))
    return x


@register(
    "h264-approx",
    "H.264 at a CRF, approximated on one frame by JPEG at a mapped quality (no motion, no deblocking)",
    [ParamInfo("crf", int, 23, 0, 51, "constant rate factor (23 = FF++ c23, 40 = c40)")],
    group="compression",
)
def h264_approx(x: np.ndarray, p: _Params) -> np.ndarray:
    quality = p.set("jpeg_quality", crf_to_jpeg_quality(p.get("crf")))
    return _jpeg_roundtrip(x, quality)


@register(
    "chroma-420",
    "Chroma subsampling 4:2:0: YCrCb with half-resolution chroma",
    [],
    group="compression",
    paper_index=7,
)
def chroma_420(x: np.ndarray, p: _Params) -> np.ndarray:
    ycc = cv2.cvtColor(x, cv2.COLOR_RGB2YCrCb)
    h, w = x.shape[:2]
    half = (max(1, w // 2), max(1, h // 2))
    small = cv2.resize(np.ascontiguousarray(ycc[..., 1:]), half, interpolation=cv2.INTER_AREA)
    ycc[..., 1:] = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, 2)
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)


# --------------------------------------------------------------------------------------------
# Colour and tone (paper ops 4, 8, 9, 13)
# --------------------------------------------------------------------------------------------


def _grayscale(x: np.ndarray, amount: float) -> np.ndarray:
    gray = _luma(x)[..., None]
    return x + np.float32(amount) * (gray - x)


def _color_cast(x: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    gains = 1.0 + amount * rng.uniform(-1.0, 1.0, size=3)
    saturation = 1.0 - amount * rng.random()
    out = _grayscale(x, 1.0 - saturation)
    return out * gains.astype(np.float32)


@register(
    "grayscale",
    "Convert to grey (BT.601 luma), blended by `amount`",
    [ParamInfo("amount", float, 1.0, 0.0, 1.0, "1 = fully grey")],
    group="color",
)
def grayscale(x: np.ndarray, p: _Params) -> np.ndarray:
    return _grayscale(x, p.get("amount"))


@register(
    "color-cast",
    "Colour cast (random per-channel gains 1 +- amount) and saturation fade (up to amount)",
    [ParamInfo("amount", float, None, 0.0, 1.0, "cast amplitude (auto: 0.4*strength)"), _strength()],
    group="color",
)
def color_cast(x: np.ndarray, p: _Params) -> np.ndarray:
    return _color_cast(x, p.get("amount", lambda: 0.4 * p.strength), p.rng)


@register(
    "color",
    "Grayscale (20%) or colour cast / saturation fade (80%) with amplitude 0.4*strength",
    [
        ParamInfo(
            "mode", str, "random", help="random: grayscale 20%, cast 80%", choices=("random", "grayscale", "cast")
        ),
        _strength(),
    ],
    group="color",
    paper_index=4,
)
def color(x: np.ndarray, p: _Params) -> np.ndarray:
    if p.choice("mode", {"grayscale": 0.2, "cast": 0.8}) == "grayscale":
        return _grayscale(x, 1.0)
    return _color_cast(x, 0.4 * p.strength, p.rng)


@register(
    "posterize",
    "Colour banding: quantise each channel to `levels` levels",
    [ParamInfo("levels", int, None, 2, 256, "levels per channel (auto: 32 - 28*strength)"), _strength()],
    group="color",
    paper_index=8,
)
def posterize(x: np.ndarray, p: _Params) -> np.ndarray:
    steps = np.float32(p.get("levels", lambda: round(32 - 28 * p.strength)) - 1)
    return np.round(x * steps) / steps


@register(
    "brightness-contrast",
    "Brightness offset and contrast factor around the mean luma",
    [
        ParamInfo("brightness", float, None, -1.0, 1.0, "offset (auto: +-0.3*strength)"),
        ParamInfo("contrast", float, None, 0.0, 4.0, "factor (auto: 1 +- 0.5*strength)"),
        _strength(),
    ],
    group="color",
    paper_index=9,
)
def brightness_contrast(x: np.ndarray, p: _Params) -> np.ndarray:
    brightness = p.get("brightness", lambda: 0.3 * p.strength * p.rng.uniform(-1.0, 1.0))
    contrast = p.get("contrast", lambda: 1.0 + 0.5 * p.strength * p.rng.uniform(-1.0, 1.0))
    mean = np.float32(_luma(x).mean())
    return (x - mean) * np.float32(contrast) + mean + np.float32(brightness)


def _centered_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates relative to the centre as a (H,1) column and a (1,W) row (broadcasting)."""
    ys = (np.arange(h, dtype=np.float32) - (h - 1) / 2.0)[:, None]
    xs = (np.arange(w, dtype=np.float32) - (w - 1) / 2.0)[None, :]
    return ys, xs


@register(
    "vignette",
    "Vignetting: radial darkening towards the corners",
    [ParamInfo("amount", float, None, 0.0, 1.0, "corner darkening (auto: 0.4 + 0.4*strength)"), _strength()],
    group="color",
    paper_index=13,
)
def vignette(x: np.ndarray, p: _Params) -> np.ndarray:
    amount = p.get("amount", lambda: 0.4 + 0.4 * p.strength)
    h, w = x.shape[:2]
    ys, xs = _centered_grid(h, w)
    r2 = (ys / max((h - 1) / 2.0, 1.0)) ** 2 + (xs / max((w - 1) / 2.0, 1.0)) ** 2  # 2 at the corners
    mask = 1.0 - np.float32(amount) * np.minimum(r2 / 2.0, 1.0)
    return x * mask[..., None]


# --------------------------------------------------------------------------------------------
# Artefacts (paper ops 10, 11, 12)
# --------------------------------------------------------------------------------------------


@register(
    "chromatic-aberration",
    "Lateral chromatic aberration: red and blue shifted in opposite directions",
    [
        ParamInfo("shift", float, None, 0.0, 64.0, "shift in px (auto: up to 4*strength)"),
        ParamInfo("angle", float, None, 0.0, 360.0, "shift direction in degrees (auto: random)"),
        _strength(),
    ],
    group="artifact",
    paper_index=10,
)
def chromatic_aberration(x: np.ndarray, p: _Params) -> np.ndarray:
    shift = p.get("shift", lambda: 4.0 * p.strength * p.rng.random())
    angle = math.radians(p.get("angle", lambda: p.rng.uniform(0.0, 360.0)))
    dx, dy = shift * math.cos(angle), shift * math.sin(angle)
    h, w = x.shape[:2]
    out = x.copy()
    for channel, sign in ((0, 1.0), (2, -1.0)):
        m = np.float32([[1, 0, sign * dx], [0, 1, sign * dy]])
        plane = np.ascontiguousarray(x[..., channel])
        out[..., channel] = cv2.warpAffine(
            plane, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
    return out


@register(
    "moire",
    "Moire: a sinusoidal grating blended over the image",
    [
        ParamInfo("alpha", float, None, 0.0, 1.0, "blend weight (auto: 0.15*strength)"),
        ParamInfo("period", float, None, 2.0, 64.0, "grating period in px (auto: 3..12)"),
        ParamInfo("angle", float, None, 0.0, 180.0, "grating angle in degrees (auto: random)"),
        _strength(),
    ],
    group="artifact",
    paper_index=11,
)
def moire(x: np.ndarray, p: _Params) -> np.ndarray:
    alpha = np.float32(p.get("alpha", lambda: 0.15 * p.strength))
    period = p.get("period", lambda: p.rng.uniform(3.0, 12.0))
    theta = math.radians(p.get("angle", lambda: p.rng.uniform(0.0, 180.0)))
    ys, xs = _centered_grid(*x.shape[:2])
    k = np.float32(2.0 * math.pi / period)
    grating = 0.5 + 0.5 * np.sin(xs * (k * math.cos(theta)) + ys * (k * math.sin(theta)))
    return x * (1.0 - alpha) + (alpha * grating)[..., None]


@register(
    "glitch",
    "Glitch: horizontal bands dropped (black) or rolled sideways",
    [
        ParamInfo("bands", int, None, 0, 200, "number of bands (auto: 1..10*strength)"),
        ParamInfo("shift", int, None, 0, 2000, "max horizontal roll in px (auto: 30*strength)"),
        _strength(),
    ],
    group="artifact",
    paper_index=12,
)
def glitch(x: np.ndarray, p: _Params) -> np.ndarray:
    bands = p.get("bands", lambda: max(1, round(p.rng.random() * 10.0 * p.strength)))
    max_shift = p.get("shift", lambda: max(1, round(30.0 * p.strength)))
    h = x.shape[0]
    out = x.copy()
    max_height = max(1, h // 20)
    for _ in range(bands):  # a loop over at most a few bands, each a vectorised slice
        height = int(p.rng.integers(1, max_height + 1))
        top = int(p.rng.integers(0, max(1, h - height + 1)))
        band = slice(top, top + height)
        if p.rng.random() < 1.0 / 3.0:
            out[band] = 0.0
        else:
            out[band] = np.roll(out[band], int(p.rng.integers(-max_shift, max_shift + 1)), axis=1)
    return out


# --------------------------------------------------------------------------------------------
# Distractors (paper op 14)
# --------------------------------------------------------------------------------------------

_FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
)
_TEXT_CHARS = string.ascii_uppercase + string.digits


def _draw_text(x: np.ndarray, text: str, size: float, opacity: float, rng: np.random.Generator) -> np.ndarray:
    h, w = x.shape[:2]
    font = _FONTS[int(rng.integers(len(_FONTS)))]
    colour = rng.random(3).astype(np.float32)
    (_, unit_h), _ = cv2.getTextSize("X", font, 1.0, 1)
    scale = max(6.0, size * min(h, w)) / unit_h
    thickness = max(1, round(scale * 1.5))
    (tw, th), baseline = cv2.getTextSize(text, font, scale, thickness)
    left = int(rng.integers(0, max(1, w - tw)))
    bottom = int(rng.integers(min(th, h - 1), max(th + 1, h - baseline)))
    # OpenCV draws text on 8-bit images only: draw a coverage mask and blend in float
    mask = np.zeros((h, w), dtype=np.uint8)
    cv2.putText(mask, text, (left, bottom), font, scale, 255, thickness, cv2.LINE_AA)
    alpha = mask.astype(np.float32) * np.float32(opacity / 255.0)
    return x + alpha[..., None] * (colour - x)


def _random_text(rng: np.random.Generator) -> str:
    indices = rng.integers(0, len(_TEXT_CHARS), size=int(rng.integers(4, 13)))
    return "".join(_TEXT_CHARS[int(i)] for i in indices)


def _paste_patch(x: np.ndarray, size: float, source: str, rng: np.random.Generator) -> np.ndarray:
    h, w = x.shape[:2]
    ph = pw = max(1, min(h, w, round(size * min(h, w))))
    if source == "procedural":
        # There is no second image at inference time: a smooth random colour field with fine
        # grain stands in for "a patch of another image" (foreign content, natural-ish spectrum).
        field_ = cv2.resize(rng.random((4, 4, 3), dtype=np.float32), (pw, ph), interpolation=cv2.INTER_CUBIC)
        patch = field_.reshape(ph, pw, 3) + 0.05 * _normal(rng, (ph, pw, 3))
    else:  # "shuffled": a block from elsewhere in the same image, flipped both ways
        sy, sx = int(rng.integers(0, h - ph + 1)), int(rng.integers(0, w - pw + 1))
        patch = x[sy : sy + ph, sx : sx + pw][::-1, ::-1]
    ty, tx = int(rng.integers(0, h - ph + 1)), int(rng.integers(0, w - pw + 1))
    out = x.copy()
    out[ty : ty + ph, tx : tx + pw] = patch
    return out


_TEXT_PARAMS = (
    ParamInfo("text", str, None, help="text to draw (auto: 4-12 random letters/digits)"),
    ParamInfo("size", float, None, 0.01, 0.5, "glyph height / short side (auto: 0.05..0.15)"),
    ParamInfo("opacity", float, None, 0.0, 1.0, "text opacity (auto: 0.7..1)"),
)
_PATCH_PARAMS = (
    ParamInfo("size", float, None, 0.02, 0.9, "patch side as a fraction of the short side (auto: 0.1..0.25)"),
    ParamInfo(
        "source",
        str,
        "random",
        help="procedural: generated colour field; shuffled: flipped block of the same image",
        choices=("random", "procedural", "shuffled"),
    ),
)


@register("distractor-text", "Random text drawn at a random place", _TEXT_PARAMS, group="distractor")
def distractor_text(x: np.ndarray, p: _Params) -> np.ndarray:
    text = p.get("text", lambda: _random_text(p.rng))
    size = p.get("size", lambda: p.rng.uniform(0.05, 0.15))
    opacity = p.get("opacity", lambda: p.rng.uniform(0.7, 1.0))
    return _draw_text(x, text, size, opacity, p.rng)


@register(
    "distractor-patch",
    "A foreign patch pasted at a random place (procedural, or a flipped block of the same image)",
    _PATCH_PARAMS,
    group="distractor",
)
def distractor_patch(x: np.ndarray, p: _Params) -> np.ndarray:
    size = p.get("size", lambda: p.rng.uniform(0.1, 0.25))
    return _paste_patch(x, size, p.choice("source"), p.rng)


@register(
    "distractor",
    "Distractor: random text, or a small foreign patch (see distractor-text, distractor-patch)",
    [ParamInfo("kind", str, "random", help="random: uniform", choices=("random", "text", "patch"))],
    group="distractor",
    paper_index=14,
)
def distractor(x: np.ndarray, p: _Params) -> np.ndarray:
    if p.choice("kind") == "text":
        return _draw_text(x, _random_text(p.rng), p.rng.uniform(0.05, 0.15), p.rng.uniform(0.7, 1.0), p.rng)
    source = ("procedural", "shuffled")[int(p.rng.integers(2))]
    return _paste_patch(x, p.rng.uniform(0.1, 0.25), source, p.rng)


# --------------------------------------------------------------------------------------------
# DeeperForensics-1.0 distortions, levels 1-5 (Jiang et al., CVPR 2020)
# --------------------------------------------------------------------------------------------

DF_LEVELS: Mapping[str, tuple[float, ...]] = MappingProxyType(
    {
        "saturation": (0.4, 0.3, 0.2, 0.1, 0.0),  # chroma factor in YCbCr
        "contrast": (0.85, 0.725, 0.6, 0.475, 0.35),  # pixel value factor
        "block": (16, 32, 48, 64, 80),  # grey 8x8 blocks per 256 px of the short side
        "noise": (0.001, 0.002, 0.005, 0.01, 0.05),  # Gaussian variance in YCbCr, [0, 1] units
        "blur": (7, 9, 13, 17, 21),  # Gaussian kernel size, sigma = size / 6
        "pixelate": (2, 3, 4, 5, 6),  # down/up-scale factor (what DF-1.0 calls "JPEG")
        "compress": (30, 32, 35, 38, 40),  # H.264 CRF (approximated here, see h264-approx)
    }
)


def _df_level() -> ParamInfo:
    return ParamInfo("level", int, 3, 1, 5, "DeeperForensics-1.0 level (1 mild .. 5 severe)")


def _df_value(kind: str, p: _Params) -> float:
    return DF_LEVELS[kind][p.get("level") - 1]


_DF = "deeperforensics"


@register("df-saturation", "DF-1.0 colour saturation change: chroma scaled by 0.4..0.0", [_df_level()], group=_DF)
def df_saturation(x: np.ndarray, p: _Params) -> np.ndarray:
    ycc = cv2.cvtColor(x, cv2.COLOR_RGB2YCrCb)
    ycc[..., 1:] = 0.5 + (ycc[..., 1:] - 0.5) * np.float32(_df_value("saturation", p))
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)


@register("df-contrast", "DF-1.0 colour contrast change: pixels scaled by 0.85..0.35", [_df_level()], group=_DF)
def df_contrast(x: np.ndarray, p: _Params) -> np.ndarray:
    return x * np.float32(_df_value("contrast", p))


@register(
    "df-block",
    "DF-1.0 local block-wise distortion: 16..80 grey 8x8 blocks (per 256 px of the short side)",
    [_df_level()],
    group=_DF,
)
def df_block(x: np.ndarray, p: _Params) -> np.ndarray:
    h, w = x.shape[:2]
    count = int(_df_value("block", p)) * max(1, min(h, w) // 256)
    side = min(8, h, w)
    ys = p.rng.integers(0, h - side + 1, size=count)
    xs = p.rng.integers(0, w - side + 1, size=count)
    out = x.copy()
    for y, x0 in zip(ys, xs):
        out[y : y + side, x0 : x0 + side] = 128.0 / 255.0
    return out


@register(
    "df-noise",
    "DF-1.0 colour Gaussian noise: variance 0.001..0.05 added in YCbCr",
    [_df_level()],
    group=_DF,
)
def df_noise(x: np.ndarray, p: _Params) -> np.ndarray:
    ycc = cv2.cvtColor(x, cv2.COLOR_RGB2YCrCb)
    ycc += np.float32(math.sqrt(_df_value("noise", p))) * _normal(p.rng, ycc.shape)
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)


@register("df-blur", "DF-1.0 Gaussian blur: kernel 7..21, sigma = kernel/6", [_df_level()], group=_DF)
def df_blur(x: np.ndarray, p: _Params) -> np.ndarray:
    k = int(_df_value("blur", p))
    return cv2.GaussianBlur(x, (k, k), k / 6.0)


@register(
    "df-pixelate",
    "DF-1.0 pixelation (their 'JPEG' type): bilinear down by 2..6 and back up",
    [_df_level()],
    group=_DF,
)
def df_pixelate(x: np.ndarray, p: _Params) -> np.ndarray:
    factor = int(_df_value("pixelate", p))
    h, w = x.shape[:2]
    small = cv2.resize(x, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


@register(
    "df-compress",
    "DF-1.0 video compression at CRF 30..40, approximated by JPEG (see h264-approx)",
    [_df_level()],
    group=_DF,
)
def df_compress(x: np.ndarray, p: _Params) -> np.ndarray:
    crf = p.set("crf", int(_df_value("compress", p)))
    return _jpeg_roundtrip(x, p.set("jpeg_quality", crf_to_jpeg_quality(crf)))


# --------------------------------------------------------------------------------------------

OPS: Mapping[str, OpInfo] = MappingProxyType(_REGISTRY)
"""Every registered operation by name (read-only)."""

PAPER_OPS: tuple[str, ...] = tuple(
    op.name
    for op in sorted((o for o in _REGISTRY.values() if o.paper_index is not None), key=lambda o: o.paper_index)
)
"""The paper's 15 compound operations, in the order of its table (index 0..14)."""
