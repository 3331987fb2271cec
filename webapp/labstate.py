"""The lab's state as a short code and a link (``?lab=CODE``), so that a teacher can prepare a demonstration.

A code names the lab's settings that differ from neutral, then the sweep's family and the
explanation method, as ``key:value`` pairs separated by commas, e.g.
``jpeg:30,seed:7,family:jpeg,explain:fast``; the characters are all allowed in a URL query, so the
link stays readable: ``http://host/?lab=jpeg:30,seed:7,family:jpeg,explain:fast``. The page's
"Link to this lab state" writes one; opening the link (``demo.load`` reads ``?lab=``) or pasting
the link or the code and pressing Restore puts the controls back.

A code comes from outside (a link anyone can write), so :func:`decode` checks everything: known
keys, each once, values of the right kind inside the controls' ranges, a bounded length. A bad code
is one :class:`LabStateError` line, and the page then changes nothing.
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import gradio as gr

from forensic.degrade import DEGRADATION_PRESETS, MAX_SEED
from forensic.explain import method_labels

from .lab import NEUTRAL, LabSettings
from .views import FAMILY_CHOICES

__all__ = ["LabState", "LabStateError", "RANGES", "MAX_CODE", "encode", "decode", "page_events", "LINK_JS"]

#: the longest code (or link) accepted
MAX_CODE = 400
#: code key -> (LabSettings field, lowest, highest, whole number): the lab's sliders' ranges (webapp.layout)
RANGES: dict[str, tuple[str, float, float, bool]] = {
    "jpeg": ("jpeg_quality", 5, 100, True),
    "gblur": ("gblur_sigma", 0, 8, False),
    "motion": ("motion_length", 1, 51, True),
    "angle": ("motion_angle", 0, 180, False),
    "noise": ("gnoise_sigma", 0, 100, False),
    "resize": ("resize_scale", 0.1, 1, False),
    "compound": ("compound", 0, 1, False),
    "seed": ("seed", 0, MAX_SEED, True),
}
_METHODS = tuple(value for _, value in method_labels(allow_none=True))
#: turns the code the server wrote into a link to this very page (run in the browser, which knows its address)
LINK_JS = ("(code) => (!code || code.includes('?lab=')) ? code : "
           "window.location.origin + window.location.pathname + '?lab=' + code")


class LabStateError(ValueError):
    """A code (or link) that does not describe a lab state; the message is one line saying what to do."""


@dataclass(frozen=True)
class LabState:
    """The lab's settings, the sweep's family and the explanation method (None: not in the code, left as they are)."""

    lab: LabSettings
    family: str | None = None
    explain: str | None = None


def _num(x: float) -> str:
    return f"{int(x)}" if float(x).is_integer() else f"{float(x):g}"


def encode(state: LabState) -> str:
    """The code of ``state``: the lab's settings that differ from neutral, then family and explanation method."""
    lab = state.lab
    pairs = [] if lab.preset in (None, "", "none") else [f"preset:{lab.preset}"]
    for key, (name, _, _, _) in RANGES.items():
        value = getattr(lab, name)
        if value != getattr(NEUTRAL, name):
            pairs.append(f"{key}:{_num(value)}")
    pairs += [f"{k}:{v}" for k, v in (("family", state.family), ("explain", state.explain)) if v]
    return ",".join(pairs) or "neutral"


def _shown(text: str) -> str:
    """A piece of a code as a message may show it: quoted, cut, control characters escaped (one line)."""
    return repr(text[:30])


def _value(key: str, text: str) -> float | int:
    name, low, high, whole = RANGES[key]
    try:
        value = float(text)
    except ValueError:
        raise LabStateError(f"{key}:{_shown(text)} is not a number") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise LabStateError(f"{key} must lie between {_num(low)} and {_num(high)}, not {_shown(text)}")
    if whole:
        if not value.is_integer():
            raise LabStateError(f"{key} must be a whole number, not {_shown(text)}")
        return int(value)
    return value


def decode(text: str) -> LabState:
    """The state a code (or a link holding ``?lab=CODE``) describes; settings it leaves out are neutral.

    Raises:
        LabStateError: not a code of this app (one line: what is wrong).
    """
    text = (text or "").strip()
    if not text:
        raise LabStateError("the box is empty: paste a link or code made by \"Link to this lab state\"")
    if len(text) > MAX_CODE:
        raise LabStateError(f"the code is {len(text)} characters long; a lab code has at most {MAX_CODE}")
    if "?" in text or "://" in text:  # a whole link: its lab= parameter
        codes = urllib.parse.parse_qs(urllib.parse.urlsplit(text).query).get("lab")
        if not codes:
            raise LabStateError("this link has no lab= part: copy it again with \"Link to this lab state\"")
        text = codes[0].strip()
    lab, extra, seen = {}, {}, set()
    for pair in ([] if text == "neutral" else text.split(",")):
        key, sep, value = pair.strip().partition(":")
        if not sep or not key or not value:
            raise LabStateError(f"{_shown(pair)} is not key:value (e.g. jpeg:30)")
        if key in seen:
            raise LabStateError(f"{key} is given twice")
        seen.add(key)
        if key in RANGES:
            lab[RANGES[key][0]] = _value(key, value)
        elif key == "preset":
            if value not in DEGRADATION_PRESETS:
                raise LabStateError(f"unknown preset {_shown(value)}")
            lab["preset"] = value
        elif key == "family":
            if value not in FAMILY_CHOICES:
                raise LabStateError(f"unknown family {_shown(value)}; one of: {', '.join(FAMILY_CHOICES)}")
            extra["family"] = value
        elif key == "explain":
            if value not in _METHODS:
                raise LabStateError(f"unknown explanation method {_shown(value)}; one of: {', '.join(_METHODS)}")
            extra["explain"] = value
        else:
            known = ", ".join(["preset", *RANGES, "family", "explain"])
            raise LabStateError(f"unknown setting {_shown(key)}; a code names: {known}")
    return LabState(replace(NEUTRAL, **lab), **extra)


# ------------------------------------------------------------------------------------------- the page
def _controls(state: LabState) -> list:
    # in webapp.lab.LabSettings.CONTROLS' order (the page's lab controls)
    lab = state.lab
    by_control = {f.name: getattr(lab, f.name) for f in fields(LabSettings)}
    by_control["compound_strength"] = lab.compound
    return [by_control[name] for name in LabSettings.CONTROLS]


def page_events(*, explain_ready: bool) -> tuple[Callable, Callable, Callable]:
    """The page's three events: (link, restore, load).

    - ``link(*controls, family, explain)``: the code of the lab as it is, and a status line;
    - ``restore(text)``: the controls, family, explanation method and a status line from a pasted code
      or link (a bad one: every control left as it is, the reason in the status line);
    - ``load(request)``: the same from the page's ``?lab=`` query, or nothing without one.

    ``explain_ready``: the explanation control is usable (no detector: it stays as it is).
    """
    n = len(LabSettings.CONTROLS)
    keep = gr.skip()

    def link(*values):
        try:
            lab = LabSettings.from_controls(*values[:n])
            if not isinstance(lab.seed, int) or not 0 <= lab.seed <= MAX_SEED:
                raise LabStateError(f"the seed must be a whole number from 0 to {MAX_SEED}")
        except (LabStateError, TypeError, ValueError) as exc:
            return keep, f"⚠ **No link**: {exc}."
        family, explain = values[n], values[n + 1]
        code = encode(LabState(lab, family or None, explain or None))
        return code, "Copy the link above; opening it (or pasting it here and pressing **Restore**) brings this lab back."

    def restore(text):
        try:
            state = decode(text)
        except LabStateError as exc:
            return (*([keep] * (n + 2)), f"⚠ **Not a lab code**: {exc}. Nothing was changed.")
        explain = state.explain if explain_ready and state.explain else keep
        return (*_controls(state), state.family or keep, explain, f"✓ Lab restored from `{encode(state)}`.")

    def load(request: gr.Request):
        params = dict(getattr(request, "query_params", None) or {}) if request is not None else {}
        if "lab" not in params:
            return (*([keep] * (n + 2)), keep, keep)
        code = str(params["lab"])
        return (*restore(code), code)

    return link, restore, load
