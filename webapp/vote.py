"""The discretized vote read aloud: what the 11-value P(fake) says, in words, and drawn as the grid it is.

A bare "fake" with 60 % / 40 % bars reads like a confidence. The ensemble is a *vote*: each
stream's P(fake) rounded to 0.1, averaged with weights 2:1:2, rounded again, so it takes one of
11 values. :func:`read_vote` turns that into how strong the evidence is and whether the streams
agree; :func:`vote_html` draws the grid, the streams' votes and the words. The verdict itself is
the report's (:mod:`forensic.verdict`), the one the exports write: an untrained model gets no
verdict word at all, a photo without a face is "out of scope: no face".
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING

from forensic import viz

if TYPE_CHECKING:  # pragma: no cover
    from forensic.report import Report
    from forensic.verdict import Verdict

__all__ = ["VoteReading", "read_vote", "vote_html", "GRID"]

#: the values the vote can take
GRID = tuple(round(0.1 * i, 1) for i in range(11))
_STREAMS = ("texture", "face", "fusion")


@dataclass(frozen=True)
class VoteReading:
    """What the vote says, in words a student can check against the grid.

    Attributes:
        prob_fake: the ensemble's value on the grid.
        steps: how many 0.1 steps it lies from the threshold (0 = on it).
        strength: ``none`` (on the threshold), ``weak`` (1 step), ``moderate`` (2-3), ``strong`` (4-5).
        leaning: ``fake`` or ``real`` (the verdict's label: on the threshold counts as fake), or None
            when no verdict is given (untrained weights, no face).
        agreement: ``agree``, ``partly`` (same side, far apart) or ``disagree`` (both sides).
        sides: stream -> ``fake`` / ``real`` for the streams that voted (weight > 0).
        summary: one sentence with all of the above.
        verdict: the report's verdict (what the exports say).
    """

    prob_fake: float
    steps: int
    strength: str
    leaning: str | None
    agreement: str
    sides: dict[str, str]
    summary: str
    verdict: Verdict


def _side(p: float, threshold: float) -> str:
    return "fake" if p >= threshold - 1e-9 else "real"


def read_vote(report: Report, *, threshold: float = 0.5) -> VoteReading:
    """Reads ``report``'s vote: evidence strength, leaning (None when untrained) and agreement."""
    p = float(report.prob_fake)
    steps = int(round(abs(p - threshold) * 10))
    strength = "none" if steps == 0 else "weak" if steps == 1 else "moderate" if steps <= 3 else "strong"
    voters = {n: float(report.vote.stream_probs.get(n, s.vote_prob)) for n, s in report.streams.items()
              if float(report.vote.weights.get(n, s.weight)) > 0}
    sides = {n: _side(v, threshold) for n, v in voters.items()}
    spread = (max(voters.values()) - min(voters.values())) if voters else 0.0
    agreement = "disagree" if len(set(sides.values())) > 1 else "partly" if spread >= 0.3 - 1e-9 else "agree"
    verdict = report.verdict
    summary = _summary(p, steps, strength, verdict, agreement, sides, threshold, untrained=report.untrained)
    return VoteReading(p, steps, strength, verdict.label, agreement, sides, summary, verdict)


def _summary(p, steps, strength, verdict, agreement, sides, threshold, *, untrained) -> str:
    where = (f"{p:.1f} lies on the {threshold:g} threshold" if steps == 0
             else f"{p:.1f} is {steps} step{'s' if steps > 1 else ''} of 0.1 from the {threshold:g} threshold")
    if untrained:
        head = f"No verdict: the weights are untrained, so these numbers are random ({where})."
    elif verdict.label is None:
        head = f"No verdict: no face was found and the detector was trained on faces ({where})."
    elif strength == "none":
        head = f"No evidence either way: {where} (a tie: it counts as fake)."
    else:
        head = f"Leans {verdict.label}, {strength} evidence: {where}."
    if verdict.label is not None and verdict.word.endswith("(no face)"):
        head += " No face was found: the vote is given because it was asked for."
    if agreement == "disagree":
        by_side = {side: [n for n, s in sides.items() if s == side] for side in ("real", "fake")}
        agree = f"The streams disagree: {', '.join(by_side['real'])} below the threshold, {', '.join(by_side['fake'])} at or above it."
    elif agreement == "partly":
        agree = "The streams are on the same side but far apart (0.3 or more)."
    else:
        agree = "The streams agree (within 0.2 of each other)."
    return f"{head} {agree}"


def _color(name: str) -> str:
    r, g, b = viz.STREAM_COLORS.get(name, (128, 128, 128))
    return f"#{r:02x}{g:02x}{b:02x}"


def vote_html(report: Report, *, threshold: float = 0.5, subject: str = "") -> str:
    """The vote as HTML: the 11-cell grid with the result and each stream's vote, then the words."""
    reading = read_vote(report, threshold=threshold)
    weights = {n: float(report.vote.weights.get(n, s.weight)) for n, s in report.streams.items()}
    votes = {n: float(report.vote.stream_probs.get(n, s.vote_prob)) for n, s in report.streams.items()}
    cells = []
    for g in GRID:
        marks = "".join(
            f"<span class='fv-dot' style='background:{_color(n)}' title='{n} votes {g:.1f} (weight {weights[n]:g})'>"
            f"{n[:2]}</span>" for n in _STREAMS if n in votes and abs(votes[n] - g) < 1e-9
        )
        chosen = abs(g - reading.prob_fake) < 1e-9
        cls = "fv-cell fv-chosen" if chosen else "fv-cell"
        cells.append(f"<div class='{cls}'><div class='fv-marks'>{marks}</div><div class='fv-value'>{g:.1f}</div></div>")
    terms = " + ".join(f"{weights[n]:g}×{votes[n]:.1f}" for n in _STREAMS if n in votes)
    total = sum(weights[n] for n in votes)
    mean = report.vote.mean
    legend = " ".join(
        f"<span class='fv-key'><span class='fv-dot' style='background:{_color(n)}'>{n[:2]}</span> {n} "
        f"{votes[n]:.1f} × {weights[n]:g}{' (abstained)' if n in report.vote.abstained else ''}</span>"
        for n in _STREAMS if n in votes
    )
    if report.untrained:
        head = "<div class='fv-head fv-none'>No verdict (untrained weights)</div>"
    elif reading.leaning is None:
        head = "<div class='fv-head fv-none'>No verdict: out of scope (no face found)</div>"
    elif reading.strength == "none":
        head = "<div class='fv-head'>No evidence either way</div>"
    else:
        head = f"<div class='fv-head fv-{reading.leaning}'>Leans {reading.leaning}: {reading.strength} evidence</div>"
    untrained = ("<div class='fv-untrained'>⚠ UNTRAINED weights: the vote below is random. "
                 "It shows how the tool works, not what the image is.</div>") if report.untrained else ""
    about = f"<div class='fv-subject'>{html.escape(subject)}</div>" if subject else ""
    said = (f"<div class='fv-verdict' title='{html.escape(reading.verdict.rule, quote=True)}'>"
            f"Verdict: <b>{html.escape(reading.verdict.word)}</b></div>")
    return (
        "<div class='fv'>"
        f"{about}{untrained}{head}{said}"
        f"<div class='fv-title'>Ensemble P(fake) = <b>{reading.prob_fake:.1f}</b>: one of the 11 values the vote can take</div>"
        f"<div class='fv-grid'>{''.join(cells)}</div>"
        f"<div class='fv-axis'><span>0.0 real side</span><span>threshold {threshold:g}</span><span>fake side 1.0</span></div>"
        f"<div class='fv-legend'>{legend}</div>"
        f"<div class='fv-math'>({terms}) / {total:g} = {mean:.2f} → rounded to the grid: <b>{reading.prob_fake:.1f}</b></div>"
        f"<p class='fv-words'>{html.escape(reading.summary)}</p>"
        "</div>"
    )
