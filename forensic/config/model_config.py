"""The whole configuration (:class:`ModelConfig`) and the check of a whole ``config.json``."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..lora import LoraConfig
from .checks import check_backbone, check_lora, check_stream, check_vote
from .fields import ConfigError, as_bool, as_choice, as_int, as_list, as_object, as_str, only_known, required
from .specs import PRESET_NAMES, STREAM_NAMES, BackboneSpec, StreamConfig, VoteConfig

__all__ = ["FORMAT_VERSION", "MAX_CONFIG_BYTES", "ModelConfig", "check_config_dict"]

FORMAT_VERSION = 1
#: a config.json is a few kilobytes; refuse to parse anything absurdly large
MAX_CONFIG_BYTES = 1 << 20


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a detector; serialised as the weights folder's ``config.json``."""

    preset: str
    dinov2: BackboneSpec
    clip: BackboneSpec | None
    lora: LoraConfig | None
    streams: tuple[StreamConfig, ...]
    vote: VoteConfig = VoteConfig()
    untrained: bool = False
    description: str = ""
    #: free-form provenance (training recipe, metrics, conversion source)
    meta: Mapping[str, Any] = field(default_factory=dict)

    def stream(self, name: str) -> StreamConfig:
        for s in self.streams:
            if s.name == name:
                return s
        raise KeyError(f"no stream named {name!r}; this model has {[s.name for s in self.streams]}")

    @property
    def stream_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.streams)

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    def with_stream(self, stream: StreamConfig) -> ModelConfig:
        """Returns a copy where the stream of the same name is replaced (or added)."""
        streams = [stream if s.name == stream.name else s for s in self.streams]
        if stream.name not in self.stream_names:
            streams.append(stream)
        return self.replace(streams=tuple(streams))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "preset": self.preset,
            "description": self.description,
            "untrained": self.untrained,
            "dinov2": self.dinov2.to_dict(),
            "clip": self.clip.to_dict() if self.clip else None,
            "lora": self.lora.to_dict() if self.lora else None,
            "streams": [s.to_dict() for s in self.streams],
            "vote": self.vote.to_dict(),
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Builds a config from its JSON form, after :func:`check_config_dict` (raises :class:`ConfigError`)."""
        check_config_dict(data)
        return cls(
            preset=data["preset"],
            description=data.get("description", ""),
            untrained=bool(data.get("untrained", False)),
            dinov2=BackboneSpec.from_dict(data["dinov2"]),
            clip=BackboneSpec.from_dict(data["clip"]) if data.get("clip") else None,
            lora=LoraConfig.from_dict(data["lora"]) if data.get("lora") else None,
            streams=tuple(StreamConfig.from_dict(s) for s in data["streams"]),
            vote=VoteConfig.from_dict(data.get("vote", {})),
            meta=dict(data.get("meta", {})),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json_file(cls, path: str | Path) -> ModelConfig:
        """Reads and checks a ``config.json``.

        Raises:
            ConfigError: not JSON, or a field is missing, of the wrong type or out of range.
            OSError: the file cannot be read.
        """
        path = Path(path)
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError("", f"is {path.stat().st_size} bytes long; a config.json is a few kilobytes")
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
        except UnicodeDecodeError:
            raise ConfigError("", "is not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise ConfigError("", f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
        except RecursionError:
            raise ConfigError("", "is nested too deeply to be a config (lists or objects inside each other thousands of times)") from None
        try:
            return cls.from_dict(data)
        except RecursionError:
            raise ConfigError("", "is nested too deeply to be a config (lists or objects inside each other thousands of times)") from None


def check_config_dict(data: Any) -> None:
    """Checks an untrusted ``config.json`` object before anything is built from it.

    Every field is checked for type and range; base architectures must be known ones
    (:data:`BASE_ARCHS`) and their overridden sizes bounded (:data:`MAX_BASE_PARAMS`); base files
    must stay inside the weights folder; temperatures must be positive.

    Raises:
        ConfigError: naming the first bad field.
    """
    top = as_object(data, "")
    only_known(top, {"format_version", *(f.name for f in dataclasses.fields(ModelConfig))}, "")
    version = as_int(top.get("format_version", FORMAT_VERSION), "format_version", 1, None)
    if version > FORMAT_VERSION:
        raise ConfigError(
            "format_version", f"is {version}, newer than this library understands ({FORMAT_VERSION}): upgrade the forensic package"
        )
    as_choice(required(top, "preset", ""), "preset", PRESET_NAMES)
    as_str(top.get("description", ""), "description")
    as_bool(top.get("untrained", False), "untrained")
    as_object(top.get("meta", {}), "meta")
    check_backbone(required(top, "dinov2", ""), "dinov2")
    if top.get("clip") is not None:
        check_backbone(top["clip"], "clip")
    if top.get("lora") is not None:
        check_lora(top["lora"])
    streams = as_list(required(top, "streams", ""), "streams", 1, len(STREAM_NAMES))
    names = [check_stream(s, f"streams[{i}]", has_clip=top.get("clip") is not None) for i, s in enumerate(streams)]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(f"streams[{i}].name", f"repeats the stream {name!r}")
    check_vote(top.get("vote", {}), names)
