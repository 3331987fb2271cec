"""Frozen dataclasses from plain data, strictly: dotted keys, ``key=value`` overrides, one-line errors.

Generic over the dataclass it builds (:mod:`train.config` uses it for :class:`~train.config.TrainConfig`
and :class:`~train.config.DistillConfig`): an unknown key is refused with the close matches and
the valid keys, a value of the wrong type with the key and what was expected. Values are
converted only where that is unambiguous (an int where a float is wanted, ``1e-4`` read by YAML
1.1 as a string, one item given without brackets for a list).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import yaml

import forensic.config

__all__ = ["ConfigError", "build", "dotted_keys", "parse_items", "plain", "set_dotted"]


class ConfigError(forensic.config.ConfigError):
    """A training config or override is invalid; the message says which key and what is valid.

    One root for configuration errors: a :class:`forensic.config.ConfigError` (a ``ValueError``),
    whose ``problem`` is the whole message here (``field`` is empty: the message names the key).
    """

    def __init__(self, message: str) -> None:
        ValueError.__init__(self, message)  # the message as given (no "config.json field" prefix)
        self.field, self.problem = "", message


def dotted_keys(cls: type, prefix: str = "") -> list[str]:
    """All dotted keys of the dataclass ``cls`` (``optim.lr``, ``epochs``, ...)."""
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            keys.extend(dotted_keys(tp, f"{prefix}{f.name}."))
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def parse_items(items: Sequence[str], valid: Sequence[str] = ()) -> dict[str, Any]:
    """``["optim.lr=1e-4", "epochs=3"]`` -> ``{"optim.lr": "1e-4", "epochs": 3}`` (values parsed as YAML).

    ``valid``: the keys to list when an item is not ``key=value``.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not key=value (e.g. optim.lr=1e-4); valid keys: {', '.join(valid)}")
        try:
            out[key] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            out[key] = text
    return out


def build(cls: type, raw: Mapping[str, Any]) -> Any:
    """An instance of the dataclass ``cls`` from nested plain data, checking every key and type."""
    return _build(cls, raw, "", cls)


def set_dotted(raw: dict[str, Any], key: str, value: Any, cls: type) -> None:
    """Sets ``raw[a][b] = value`` for the dotted key ``a.b`` of the dataclass ``cls`` (unknown keys refused)."""
    keys = dotted_keys(cls)
    if key not in keys:
        raise _unknown_key(key, keys)
    node = raw
    *sections, leaf = key.split(".")
    for name in sections:
        child = node.get(name)
        if child is None:
            child = node[name] = {}
        elif not isinstance(child, dict):
            raise ConfigError(f"config key {name!r} must be a mapping (it has sub-keys)")
        node = child
    node[leaf] = value


def _unknown_key(key: str, keys: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key, keys, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return ConfigError(f"unknown config key {key!r}.{hint} Valid keys: {', '.join(keys)}")


def _build(cls: type, raw: Mapping[str, Any], prefix: str, root: type) -> Any:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or 'the config'} must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = [k for k in raw if k not in names]
    if unknown:
        key = f"{prefix}{unknown[0]}"
        raise _unknown_key(key, dotted_keys(root))
    kwargs = {}
    for name, value in raw.items():
        tp = hints[name]
        key = f"{prefix}{name}"
        kwargs[name] = _build(tp, value or {}, f"{key}.", root) if dataclasses.is_dataclass(tp) else _coerce(value, tp, key)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: {exc}") from None


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Checks ``value`` against the annotation ``tp``; converts only where it is unambiguous."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and (value is None or (isinstance(value, str) and value.lower() in ("null", "none"))):
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key}: invalid value {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin in (tuple, list):
        if isinstance(value, str):
            value = [value]  # one item given without brackets
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        item_tp = args[0] if args else Any
        return tuple(_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    if tp is Any:
        return value
    raise ConfigError(f"{key}: unsupported config type {tp!r}")  # pragma: no cover - a bug in this module


def plain(value: Any) -> Any:
    """Nested dicts, lists and scalars (tuples as lists), as written to YAML."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
