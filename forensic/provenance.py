"""Provenance hints: the file metadata a journalist checks first (EXIF, C2PA Content Credentials).

Hints, never part of the vote. Reading is bounded and never raises: metadata that is huge,
malformed or hostile, a manifest that fails validation, or a library that raises becomes a
one-line note. C2PA is read with the official ``c2pa-python`` bindings, imported lazily (the
note says so when they are missing); remote manifests and OCSP are never fetched.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Provenance", "read_provenance", "MAX_FILE_BYTES", "MAX_EXIF_BYTES", "MAX_TEXT"]

#: a larger file is not read for metadata (the note says so)
MAX_FILE_BYTES = 256 * 1024 * 1024
#: a larger EXIF block is not parsed
MAX_EXIF_BYTES = 1024 * 1024
#: each text value is cut to this many characters
MAX_TEXT = 120
#: at most this many validation codes and AI source types are kept
MAX_ITEMS = 5
PIXELS_NOTE = "no file metadata (the image was passed as pixels)"
#: IPTC digital source types that say a generative model made (part of) the image
AI_SOURCE_TYPES = ("trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia",
                   "compositeSynthetic")
_TAGS = {"make": 0x010F, "model": 0x0110, "software": 0x0131, "modified": 0x0132}
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_EXIF_DATES = {"taken": 0x9003, "digitized": 0x9004}


@dataclass(frozen=True)
class Provenance:
    """What a file says about where it came from.

    Attributes:
        has_file: whether there was a file (a path or bytes) to read; False for pixels.
        exif: EXIF hints found (``make``, ``model``, ``software``, ``modified``, ``taken``,
            ``digitized``: text cut to :data:`MAX_TEXT`); ``gps`` is True when a GPS block is present.
        c2pa: whether Content Credentials are present (None: could not tell).
        signer: the C2PA signature's issuer / common name.
        claim_generator: the software that wrote the active manifest.
        ai_generated: the active manifest declares a generative-AI digital source type.
        ai_source_types: those source types (the IPTC term's last segment).
        validation_state: the SDK's validation state (``Valid``, ``Invalid``, ``Trusted``).
        validation_errors: failure codes of the validation (at most :data:`MAX_ITEMS`).
        notes: one line each about what could not be read.
    """

    has_file: bool
    exif: dict[str, Any] = field(default_factory=dict)
    c2pa: bool | None = None
    signer: str | None = None
    claim_generator: str | None = None
    ai_generated: bool = False
    ai_source_types: tuple[str, ...] = ()
    validation_state: str | None = None
    validation_errors: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "has_file": self.has_file,
            "exif": dict(self.exif),
            "c2pa": {
                "present": self.c2pa,
                "signer": self.signer,
                "claim_generator": self.claim_generator,
                "ai_generated": self.ai_generated,
                "ai_source_types": list(self.ai_source_types),
                "validation_state": self.validation_state,
                "validation_errors": list(self.validation_errors),
            },
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        """One paragraph of plain text (hints, not evidence)."""
        if not self.has_file:
            return "; ".join(self.notes) or PIXELS_NOTE
        e = self.exif
        parts = []
        camera = " ".join(str(e[k]) for k in ("make", "model") if e.get(k))
        bits = [f"camera {camera}" if camera else "no camera make/model"]
        bits += [f"{label} {e[k]}" for k, label in (("software", "software"), ("taken", "taken"),
                                                    ("modified", "modified"), ("digitized", "digitized")) if e.get(k)]
        bits.append("GPS location present" if e.get("gps") else "no GPS location")
        parts.append(("EXIF: " + ", ".join(bits)) if e else "EXIF: none")
        if self.c2pa:
            cred = ["present"]
            cred += [f"signed by {self.signer}"] if self.signer else ["signer unknown"]
            cred += [f"made with {self.claim_generator}"] if self.claim_generator else []
            if self.ai_generated:
                cred.append("declares generative AI (" + ", ".join(self.ai_source_types) + ")")
            if self.validation_state:
                cred.append(f"validation state {self.validation_state}")
            if self.validation_errors:
                cred.append("validation failures: " + ", ".join(self.validation_errors))
            parts.append("Content Credentials (C2PA): " + ", ".join(cred))
        elif self.c2pa is False:
            parts.append("Content Credentials (C2PA): none")
        text = ". ".join(parts) + "."
        return text + (" Notes: " + "; ".join(self.notes) + "." if self.notes else "")


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value[:MAX_TEXT * 4].decode("utf-8", "replace")
    text = " ".join(str(value).replace("\x00", " ").split())
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"


def _why(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return _text(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)


def read_provenance(source: Any) -> Provenance:
    """The provenance hints of ``source``: a path, bytes, or anything else (pixels: an empty result).

    Never raises (short of ``KeyboardInterrupt``): every problem is a note.
    """
    try:
        return _read(source)
    except Exception as exc:  # the last guard: a hint must never stop an analysis
        return Provenance(has_file=False, notes=(f"metadata could not be read ({_why(exc)})",))


def _read(source: Any) -> Provenance:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data: bytes | None = bytes(source)
        path = None
    elif isinstance(source, (str, os.PathLike)):
        data, path = None, os.fspath(source)
    else:
        return Provenance(has_file=False, notes=(PIXELS_NOTE,))
    notes: list[str] = []
    try:
        size = len(data) if data is not None else os.path.getsize(path)
    except OSError as exc:
        return Provenance(has_file=True, notes=(f"metadata could not be read ({_why(exc)})",))
    if size > MAX_FILE_BYTES:
        return Provenance(has_file=True, notes=(f"the file is larger than {MAX_FILE_BYTES >> 20} MiB: metadata not read",))
    exif = _exif(data, path, notes)
    c2 = _c2pa(data, path, notes)
    return Provenance(has_file=True, exif=exif, notes=tuple(notes), **c2)


def _exif(data: bytes | None, path: str | None, notes: list[str]) -> dict[str, Any]:
    from PIL import Image

    out: dict[str, Any] = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data) if data is not None else path) as img:
                raw = img.info.get("exif")
                if isinstance(raw, (bytes, bytearray)) and len(raw) > MAX_EXIF_BYTES:
                    notes.append(f"EXIF block of {len(raw)} bytes is larger than {MAX_EXIF_BYTES >> 10} KiB: not read")
                    return out
                exif = img.getexif()
                for key, tag in _TAGS.items():
                    if exif.get(tag):
                        out[key] = _text(exif[tag])
                try:
                    sub = exif.get_ifd(_EXIF_IFD)
                    for key, tag in _EXIF_DATES.items():
                        if sub.get(tag):
                            out[key] = _text(sub[tag])
                except Exception as exc:
                    notes.append(f"EXIF sub-block unreadable ({_why(exc)})")
                gps = exif.get(_GPS_IFD)
                if gps is not None:
                    try:
                        out["gps"] = bool(exif.get_ifd(_GPS_IFD)) or bool(gps)
                    except Exception:
                        out["gps"] = True
                elif out:
                    out["gps"] = False
    except Exception as exc:
        notes.append(f"EXIF unreadable ({_why(exc)})")
    return out


def _c2pa(data: bytes | None, path: str | None, notes: list[str]) -> dict[str, Any]:
    try:
        import c2pa
    except Exception as exc:  # missing, or its native library failed to load
        notes.append(f"Content Credentials not checked: the c2pa-python bindings could not be loaded ({_why(exc)})")
        return {}
    reader = None
    context = None
    try:
        settings = c2pa.Settings.from_dict({"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}})
        context = c2pa.Context(settings)
        if data is not None:
            reader = c2pa.Reader.try_create(io.BytesIO(data), context=context)
        else:
            reader = c2pa.Reader.try_create(path, context=context)
        if reader is None:
            return {"c2pa": False}
        store = json.loads(reader.json())
    except Exception as exc:
        notes.append(f"Content Credentials unreadable ({_why(exc)})")
        return {"c2pa": None}
    finally:
        for obj in (reader, context):
            try:
                if obj is not None:
                    obj.close()
            except Exception:
                pass
    return _manifest_hints(store, notes)


def _manifest_hints(store: Any, notes: list[str]) -> dict[str, Any]:
    if not isinstance(store, dict):
        notes.append("Content Credentials: the manifest store is not an object")
        return {"c2pa": None}
    manifests = store.get("manifests") if isinstance(store.get("manifests"), dict) else {}
    active = manifests.get(store.get("active_manifest")) if manifests else None
    active = active if isinstance(active, dict) else {}
    sig = active.get("signature_info") if isinstance(active.get("signature_info"), dict) else {}
    signer = sig.get("common_name") or sig.get("issuer")
    generator = active.get("claim_generator")
    info = active.get("claim_generator_info")
    if not generator and isinstance(info, list) and info and isinstance(info[0], dict):
        generator = " ".join(str(info[0][k]) for k in ("name", "version") if info[0].get(k))
    sources: list[str] = []
    _source_types(active.get("assertions"), sources, depth=0)
    ai = tuple(dict.fromkeys(s for s in sources if s in AI_SOURCE_TYPES))[:MAX_ITEMS]
    errors: list[str] = []
    results = store.get("validation_results")
    if isinstance(results, dict) and isinstance(results.get("activeManifest"), dict):
        errors += [str(f.get("code")) for f in results["activeManifest"].get("failure") or [] if isinstance(f, dict)]
    if not errors:
        errors += [str(s.get("code")) for s in store.get("validation_status") or [] if isinstance(s, dict)]
    state = store.get("validation_state")
    return {
        "c2pa": True,
        "signer": _text(signer) if signer else None,
        "claim_generator": _text(generator) if generator else None,
        "ai_generated": bool(ai),
        "ai_source_types": ai,
        "validation_state": _text(state) if state else None,
        "validation_errors": tuple(_text(e) for e in dict.fromkeys(errors))[:MAX_ITEMS],
    }


def _source_types(node: Any, out: list[str], *, depth: int) -> None:
    # every digitalSourceType under the assertions (bounded: depth 8, 200 sources)
    if depth > 8 or len(out) >= 200:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "digitalSourceType" and isinstance(value, str):
                out.append(value.rstrip("/").rsplit("/", 1)[-1])
            else:
                _source_types(value, out, depth=depth + 1)
    elif isinstance(node, list):
        for value in node[:200]:
            _source_types(value, out, depth=depth + 1)
