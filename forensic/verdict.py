"""The verdict: what one analysis may say about the image, decided once for every output.

The page, ``Report.to_dict()`` (the CLI's JSON lines and CSV rows, the app's batch CSV and its
``/analyze`` API) and the report file all render the same :class:`Verdict`, so no export says
``fake`` where the page says there is no verdict. Its states, in order of precedence:

- ``none (untrained)``: the weights are untrained (random), so no label is given (``label`` None);
- ``out of scope: no face``: a face was searched for and none was found (face mode ``no-face``).
  The detector was trained on faces, so its vote on a face-less photo says nothing; the
  probability is still reported, ``label`` is None. ``vote_without_face=True`` (the CLI's
  ``--vote-without-face``) asks for the vote anyway: the word then ends in ``(no face)``;
- ``fake (tie at 0.5)``: P(fake) is exactly the threshold; by the rule (:func:`rule_text`) a tie
  counts as fake, and the word says it was a tie;
- ``fake`` / ``real``: the side of the threshold.

A small face (mode ``small-face``) is a face: the vote is given. A model without a face stream
never searches for faces, so it is never out of scope on that account.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Verdict", "verdict_of", "rule_text", "UNTRAINED", "NO_FACE"]

#: the verdict word of untrained weights
UNTRAINED = "none (untrained)"
#: the verdict word when no face was found
NO_FACE = "out of scope: no face"


def rule_text(threshold: float) -> str:
    """The vote's rule in one sentence (the tie stated once)."""
    return (f"fake when the ensemble P(fake) >= {threshold:g}, else real; "
            f"P(fake) = {threshold:g} exactly is a tie and counts as fake")


@dataclass(frozen=True)
class Verdict:
    """What an analysis says about its image.

    Attributes:
        label: ``"fake"`` or ``"real"``, or None when no verdict is given (untrained, out of scope).
        word: the verdict as every output writes it (``fake``, ``real``, ``fake (tie at 0.5)``,
            ``none (untrained)``, ``out of scope: no face``, ``real (no face)`` ...).
        reason: one sentence saying why this is the verdict.
        rule: the vote's rule (:func:`rule_text`).
    """

    label: str | None
    word: str
    reason: str
    rule: str

    def to_dict(self) -> dict[str, Any]:
        """The verdict's keys of ``Report.to_dict()``: ``label`` (null without one), ``verdict``, its reason and rule."""
        return {"label": self.label, "verdict": self.word, "verdict_reason": self.reason, "verdict_rule": self.rule}


def verdict_of(prob_fake: float, *, threshold: float, untrained: bool, no_face: bool,
               vote_without_face: bool = False) -> Verdict:
    """The verdict of one analysis.

    Args:
        prob_fake: the ensemble P(fake) (on the vote's grid).
        threshold: the vote's threshold (``fake`` at ``prob_fake >= threshold``).
        untrained: the weights are untrained (random): no verdict.
        no_face: a face was searched for and none was found: out of scope.
        vote_without_face: give the vote even without a face (the user knows better).
    """
    rule = rule_text(threshold)
    p = float(prob_fake)
    if untrained:
        also = " (and no face was found: out of scope)" if no_face else ""
        return Verdict(None, UNTRAINED, f"The weights are untrained, so P(fake) = {p:.1f} is random{also}.", rule)
    if no_face and not vote_without_face:
        return Verdict(None, NO_FACE, f"No face was found and the detector was trained on faces, so P(fake) = {p:.1f} "
                                      "is reported but no verdict is given (ask for it with --vote-without-face).", rule)
    label = "fake" if p >= threshold - 1e-9 else "real"
    tie = abs(p - threshold) < 1e-9
    word = f"fake (tie at {threshold:g})" if tie else label
    reason = (f"P(fake) = {p:.1f} lies exactly on the threshold: a tie, which counts as fake." if tie
              else f"P(fake) = {p:.1f} is {'at or above' if label == 'fake' else 'below'} the threshold {threshold:g}.")
    if no_face:
        word += " (no face)"
        reason += " No face was found (out of scope); the vote was given because it was asked for."
    return Verdict(label, word, reason, rule)
