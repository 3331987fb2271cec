"""Temperature scaling and calibration error: the real calibration the paper's code leaves out.

The authors call their vote "calibrated" but apply no scaling to the logits (SEED_FACTS
section 4). Here each stream's 2-class logits are divided by a temperature ``T`` fitted on held-out
data by minimising the negative log-likelihood (Guo et al., "On Calibration of Modern Neural
Networks", ICML 2017). Dividing by ``T > 0`` never changes the ranking of the scores, so ROC AUC is
unchanged; only the confidence moves.

Class order follows the models: index 0 = real, index 1 = fake. With two classes the softmax
depends only on the margin ``d = logit_fake - logit_real``: ``P(fake) = sigmoid(d / T)``.

One rule for every caller (training exports, inference tools): a fitted ``T`` lies in
:data:`TEMPERATURE_RANGE`, and :func:`calibrate` keeps ``T = 1`` when the held-out set cannot
support a fit (too few samples, one class, or no misclassified sample: then the likelihood keeps
rising as ``T -> 0`` and every P(fake) would collapse to exactly 0 or 1).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit

__all__ = [
    "MIN_CALIBRATION_PER_CLASS",
    "MIN_CALIBRATION_SAMPLES",
    "TEMPERATURE_RANGE",
    "CalibrationResult",
    "ReliabilityDiagram",
    "apply_temperature",
    "as_probs_and_labels",
    "bounded_temperature",
    "calibrate",
    "calibration_skip_reason",
    "expected_calibration_error",
    "fit_temperature",
    "negative_log_likelihood",
    "reliability_diagram",
]

logger = logging.getLogger(__name__)

EceKind = Literal["top-label", "fake"]

#: The range a temperature may take. A fit outside it says something is wrong with the held-out
#: data (separable, tiny, or unrelated to the labels), not that a more extreme T would help: at
#: T = 0.05 a margin of 1 already gives P(fake) = 1 - 2e-9.
TEMPERATURE_RANGE: tuple[float, float] = (0.05, 20.0)
#: Below this many held-out samples, or this many of either class, T stays 1 (one parameter fitted
#: on a handful of images mostly fits their noise).
MIN_CALIBRATION_SAMPLES = 20
MIN_CALIBRATION_PER_CLASS = 5
_T_MIN, _T_MAX = TEMPERATURE_RANGE


# --------------------------------------------------------------------------------------------
# Input validation (shared with forensic.metrics)
# --------------------------------------------------------------------------------------------


def _as_labels(labels: Any, n: int | None = None) -> np.ndarray:
    """Labels as an int64 (N,) array of 0 (real) / 1 (fake)."""
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be a 1-D array of 0 (real) / 1 (fake), got shape {y.shape}")
    if n is not None and y.shape[0] != n:
        raise ValueError(f"labels has {y.shape[0]} entries but there are {n} scores: they must match one to one")
    if y.dtype.kind not in "biuf":
        raise ValueError(f"labels must be numbers 0 / 1 or booleans, got dtype {y.dtype}")
    if not np.isin(y, (0, 1)).all():
        bad = np.unique(y[~np.isin(y, (0, 1))])[:5]
        raise ValueError(f"labels must be 0 (real) or 1 (fake); found {bad.tolist()}")
    return y.astype(np.int64)


def as_probs_and_labels(prob_fake: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validates a (N,) P(fake) array in [0, 1] and matching labels; N >= 1."""
    p = np.asarray(prob_fake, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"prob_fake must be a 1-D array of P(fake), got shape {p.shape}")
    if p.shape[0] == 0:
        raise ValueError("prob_fake is empty: metrics need at least one sample")
    if not np.isfinite(p).all():
        raise ValueError(f"prob_fake contains {int((~np.isfinite(p)).sum())} NaN or infinite value(s)")
    if p.min() < 0.0 or p.max() > 1.0:
        raise ValueError(f"prob_fake must lie in [0, 1]; found values in [{p.min()}, {p.max()}]")
    return p, _as_labels(labels, p.shape[0])


def _as_logits(logits: Any) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"logits must have shape (N, 2) (index 0 = real, 1 = fake), got {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError("logits contain NaN or infinite values")
    return z


def _check_temperature(temperature: float) -> float:
    t = float(temperature)
    if not (math.isfinite(t) and t > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    return t


def bounded_temperature(temperature: float) -> float:
    """``temperature`` clipped to :data:`TEMPERATURE_RANGE` (a warning says when it was outside).

    For temperatures read from elsewhere (an older export, a hand-edited config).
    """
    t = _check_temperature(temperature)
    clipped = min(max(t, _T_MIN), _T_MAX)
    if clipped != t:
        logger.warning("temperature %.4g is outside the sane range [%g, %g]; using %g", t, _T_MIN, _T_MAX, clipped)
    return clipped


def _as_targets(targets: Any, n: int) -> np.ndarray:
    """Targets as a float64 (N,) array in [0, 1]: 0 (real) / 1 (fake) labels, or soft targets (a P(fake) each)."""
    q = np.asarray(targets)
    if q.ndim != 1:
        raise ValueError(f"targets must be a 1-D array of 0 (real) / 1 (fake) labels or P(fake) values, got shape {q.shape}")
    if q.shape[0] != n:
        raise ValueError(f"targets has {q.shape[0]} entries but there are {n} scores: they must match one to one")
    if q.dtype.kind not in "biuf":
        raise ValueError(f"targets must be numbers in [0, 1] or booleans, got dtype {q.dtype}")
    q = q.astype(np.float64)
    bad = ~(np.isfinite(q) & (q >= 0.0) & (q <= 1.0))
    if bad.any():
        raise ValueError(f"targets must be 0 (real) or 1 (fake) labels, or P(fake) values in [0, 1]; found {q[bad][:5].tolist()}")
    return q


def _mean_nll(margin: np.ndarray, targets: np.ndarray, temperature: float) -> float:
    # cross-entropy -[q log sigmoid(d / T) + (1 - q) log sigmoid(-d / T)]: with 0/1 labels the NLL;
    # logaddexp keeps it stable for large margins where log(1 - sigmoid) would underflow.
    z = margin / temperature
    return float(np.mean(targets * np.logaddexp(0.0, -z) + (1.0 - targets) * np.logaddexp(0.0, z)))


# --------------------------------------------------------------------------------------------
# Temperature scaling
# --------------------------------------------------------------------------------------------


def negative_log_likelihood(logits: Any, targets: Any, *, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood (natural log) of ``softmax(logits / temperature)``.

    Args:
        logits: (N, 2) array, index 1 = fake.
        targets: (N,) array in [0, 1]: 0 (real) / 1 (fake) labels, or soft targets (P(fake), e.g. a
            teacher's), for which it is the cross-entropy.
        temperature: T > 0.
    """
    z = _as_logits(logits)
    q = _as_targets(targets, z.shape[0])
    return _mean_nll(z[:, 1] - z[:, 0], q, _check_temperature(temperature))


def fit_temperature(logits: Any, targets: Any, *, max_iter: int = 200) -> float:
    """Fits the temperature T > 0 minimising the NLL of ``softmax(logits / T)`` (Guo et al. 2017).

    The search is over ``log T`` in :data:`TEMPERATURE_RANGE` with scipy's bounded Brent method,
    which is deterministic. The NLL is convex in ``1 / T`` and therefore unimodal in ``log T``, so a 1-D
    bracketing search finds the global minimum. Fit on held-out data, not on the training set.

    Args:
        logits: (N, 2) array of logits, index 0 = real, index 1 = fake.
        targets: (N,) array in [0, 1]: 0 (real) / 1 (fake) labels, or soft targets (each sample's
            P(fake), e.g. a distillation teacher's: T then makes ``softmax(logits / T)`` closest to
            them in cross-entropy).
        max_iter: maximum number of iterations of the search.

    Returns:
        The fitted temperature (> 1 softens over-confident scores, < 1 sharpens them), within
        :data:`TEMPERATURE_RANGE` (a fit that ends on a bound logs a warning; :func:`calibrate`
        also refuses sets that cannot support a fit).

    Raises:
        ValueError: wrong shapes, non-finite logits, fewer than 2 samples, targets outside
            [0, 1], or only one class present (every target 0, or every target 1).
    """
    z = _as_logits(logits)
    y = _as_targets(targets, z.shape[0])
    if z.shape[0] < 2:
        raise ValueError(f"temperature scaling needs at least 2 samples, got {z.shape[0]}")
    if np.all(y == 0) or np.all(y == 1):
        n_fake = int(y.sum())
        raise ValueError(
            "temperature scaling needs both real (0) and fake (1) examples; "
            f"got {y.shape[0] - n_fake} real and {n_fake} fake"
        )
    margin = z[:, 1] - z[:, 0]
    if not np.any(margin):
        logger.warning("all logit margins are zero: every temperature gives the same NLL; returning T = 1")
        return 1.0

    res = minimize_scalar(
        lambda log_t: _mean_nll(margin, y, math.exp(log_t)),
        bounds=(math.log(_T_MIN), math.log(_T_MAX)),
        method="bounded",
        options={"maxiter": int(max_iter), "xatol": 1e-10},
    )
    if not res.success:
        logger.warning("temperature fit did not converge in %d iterations: %s", max_iter, res.message)
    temperature = min(max(math.exp(float(res.x)), _T_MIN), _T_MAX)
    if temperature <= _T_MIN * 1.01:
        logger.warning(
            "fitted temperature hit the lower bound %.3g: the logits separate the classes (nearly) "
            "perfectly on this set, so temperature scaling is ill-posed; fit on a larger held-out set",
            _T_MIN,
        )
    elif temperature >= _T_MAX / 1.01:
        logger.warning(
            "fitted temperature hit the upper bound %.3g: the scores carry (almost) no information "
            "about the labels on this set (or rank them backwards)",
            _T_MAX,
        )
    logger.debug("fitted temperature %.6g on %d samples (mean target %.3g)", temperature, y.shape[0], float(y.mean()))
    return temperature


def apply_temperature(logits: Any, temperature: float) -> np.ndarray:
    """P(fake) = ``softmax(logits / temperature)[:, 1]`` as a (N,) float64 array.

    Args:
        logits: (N, 2) array, index 0 = real, index 1 = fake.
        temperature: T > 0 (1.0 leaves the model's probabilities unchanged).
    """
    z = _as_logits(logits)
    return expit((z[:, 1] - z[:, 0]) / _check_temperature(temperature))


# --------------------------------------------------------------------------------------------
# Calibration error
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ReliabilityDiagram:
    """Per-bin statistics of a reliability diagram.

    Bins are equal-width over [0, 1] and right-closed, ``(lo, hi]``, as in Guo et al.'s reference
    code (a value of exactly 0 goes in the first bin).

    Attributes:
        kind: ``top-label`` (x = confidence of the predicted class, y = accuracy) or ``fake``
            (x = mean P(fake), y = fraction of fakes).
        bin_edges: (n_bins + 1,) edges.
        confidence: (n_bins,) mean confidence (or mean P(fake)) per bin; NaN for empty bins.
        accuracy: (n_bins,) accuracy (or fraction of fakes) per bin; NaN for empty bins.
        count: (n_bins,) number of samples per bin.
    """

    kind: str
    bin_edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray

    @property
    def ece(self) -> float:
        """Expected calibration error: bin gaps ``|confidence - accuracy|`` weighted by counts."""
        used = self.count > 0
        gaps = np.abs(self.confidence[used] - self.accuracy[used])
        return float(np.sum(self.count[used] * gaps) / np.sum(self.count))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (NaN of empty bins become None)."""

        def clean(a: np.ndarray) -> list[float | None]:
            return [None if math.isnan(v) else float(v) for v in a]

        return {
            "kind": self.kind,
            "bin_edges": [float(v) for v in self.bin_edges],
            "confidence": clean(self.confidence),
            "accuracy": clean(self.accuracy),
            "count": [int(v) for v in self.count],
            "ece": self.ece,
        }


def reliability_diagram(
    prob_fake: Any, labels: Any, *, n_bins: int = 15, kind: EceKind = "top-label"
) -> ReliabilityDiagram:
    """Bins predictions for a reliability diagram.

    Args:
        prob_fake: (N,) P(fake) in [0, 1].
        labels: (N,) 0 (real) / 1 (fake).
        n_bins: number of equal-width bins over [0, 1].
        kind: ``top-label`` (Guo et al.: confidence = max(p, 1 - p), predicted fake when
            p >= 0.5, accuracy = fraction of correct predictions) or ``fake`` (the reliability of
            P(fake) itself: mean P(fake) against the fraction of fakes).
    """
    p, y = as_probs_and_labels(prob_fake, labels)
    if not isinstance(n_bins, int) or isinstance(n_bins, bool) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    if kind == "top-label":
        x = np.maximum(p, 1.0 - p)
        target = ((p >= 0.5).astype(np.int64) == y).astype(np.float64)
    elif kind == "fake":
        x, target = p, y.astype(np.float64)
    else:
        raise ValueError(f"kind must be 'top-label' or 'fake', got {kind!r}")

    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # searchsorted(side="left") puts x == edge[k] in bin k - 1: right-closed bins (lo, hi].
    index = np.clip(np.searchsorted(edges, x, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(index, weights=x, minlength=n_bins) / count
        accuracy = np.bincount(index, weights=target, minlength=n_bins) / count
    return ReliabilityDiagram(kind=kind, bin_edges=edges, confidence=confidence, accuracy=accuracy, count=count)


def expected_calibration_error(
    prob_fake: Any, labels: Any, *, n_bins: int = 15, kind: EceKind = "top-label"
) -> float:
    """Expected calibration error (ECE) over equal-width bins; empty bins are skipped.

    ``ECE = sum_b (n_b / N) * |mean x_b - mean y_b|`` with ``x``/``y`` as in
    :func:`reliability_diagram` (``top-label``: confidence vs accuracy, Guo et al. 2017;
    ``fake``: P(fake) vs fraction of fakes).
    """
    return reliability_diagram(prob_fake, labels, n_bins=n_bins, kind=kind).ece


# --------------------------------------------------------------------------------------------
# One call: fit and report
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationResult:
    """A temperature and what it changed (top-label ECE, mean NLL) on the fitting set.

    Attributes:
        temperature: the fitted T, or 1.0 when the set could not support a fit.
        ece_before, ece_after: top-label ECE at T = 1 and at ``temperature`` (NaN: no samples).
        nll_before, nll_after: mean NLL at T = 1 and at ``temperature`` (NaN: no samples).
        fitted: whether ``temperature`` was fitted (False: kept at 1, see ``note``).
        note: why T was kept at 1, or that the fit ended on a bound of :data:`TEMPERATURE_RANGE`.
        n: the number of samples of the fitting set.
    """

    temperature: float
    ece_before: float
    ece_after: float
    nll_before: float
    nll_after: float
    fitted: bool = True
    note: str | None = None
    n: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def calibration_skip_reason(logits: Any, labels: Any) -> str | None:
    """Why ``(logits, labels)`` cannot support a temperature fit, or None when it can.

    The reasons: fewer than :data:`MIN_CALIBRATION_SAMPLES` samples or fewer than
    :data:`MIN_CALIBRATION_PER_CLASS` of either class; all margins zero; or no misclassified sample
    (every ``P(fake)`` on the right side of 0.5), where the NLL falls without end as ``T -> 0``.
    """
    z = _as_logits(logits)
    y = _as_labels(labels, z.shape[0])
    n, n_fake = int(y.shape[0]), int(y.sum())
    if n < MIN_CALIBRATION_SAMPLES or min(n_fake, n - n_fake) < MIN_CALIBRATION_PER_CLASS:
        return (
            f"the held-out set is too small to fit a temperature ({n - n_fake} real, {n_fake} fake; "
            f"needs {MIN_CALIBRATION_SAMPLES} images with {MIN_CALIBRATION_PER_CLASS} of each class)"
        )
    margin = z[:, 1] - z[:, 0]
    if not np.any(margin):
        return "all held-out logit margins are zero (every temperature gives the same scores)"
    signed = np.where(y == 1, margin, -margin)
    if not np.any(signed < 0):
        return (
            f"the model makes no errors on the {n} held-out images, so the fit would push T towards 0 "
            "and every P(fake) to exactly 0 or 1"
        )
    return None


def calibrate(logits: Any, labels: Any, *, n_bins: int = 15) -> CalibrationResult:
    """Fits a temperature on ``(logits, labels)`` and reports ECE and NLL before and after.

    When :func:`calibration_skip_reason` finds the set unfit for a fit, T stays 1 (``fitted`` is
    False and ``note`` says why, also logged as a warning). A fit that ends on a bound of
    :data:`TEMPERATURE_RANGE` is kept at that bound, with a note.

    Args:
        logits: (N, 2) held-out logits, index 1 = fake.
        labels: (N,) 0 (real) / 1 (fake).
        n_bins: bins of the (top-label) ECE.
    """
    z = _as_logits(logits)
    y = _as_labels(labels, z.shape[0])
    reason = calibration_skip_reason(z, y)
    note = None
    if reason is not None:
        logger.warning("temperature kept at 1: %s", reason)
        temperature, note = 1.0, reason
    else:
        temperature = fit_temperature(z, y)
        if temperature <= _T_MIN * 1.01 or temperature >= _T_MAX / 1.01:
            note = f"the fit ended on the bound T = {temperature:.3g} of the allowed range [{_T_MIN:g}, {_T_MAX:g}]"
    if z.shape[0] == 0:
        nan = math.nan
        return CalibrationResult(temperature, nan, nan, nan, nan, fitted=False, note=note, n=0)
    before, after = apply_temperature(z, 1.0), apply_temperature(z, temperature)
    return CalibrationResult(
        temperature=temperature,
        ece_before=expected_calibration_error(before, y, n_bins=n_bins),
        ece_after=expected_calibration_error(after, y, n_bins=n_bins),
        nll_before=negative_log_likelihood(z, y, temperature=1.0),
        nll_after=negative_log_likelihood(z, y, temperature=temperature),
        fitted=reason is None,
        note=note,
        n=int(z.shape[0]),
    )
