"""The ``paper`` preset's default weights: the authors' checkpoints, downloaded and converted once."""

from __future__ import annotations

import logging
from pathlib import Path

from .folder import convert_seed

__all__ = ["paper_seed_weights"]

log = logging.getLogger(__name__)


def paper_seed_weights(*, cache_dir: str | Path | None = None, revision: str | None = None, runtime=None) -> Path:
    """The ``paper`` preset's default weights: the authors' three checkpoints, converted once.

    Downloads ``dinov2_252.pth``, ``dinov2_252_crop.pth`` and ``dinov2_clip.pth`` from
    ``lpmkhoa/hcmusaqua-ntire26-weights`` (or takes them from the Hugging Face cache) and converts
    them into ``<cache>/paper-seed[-<revision>]``; later calls return that folder at once. The
    cache is ``cache_dir``, else ``runtime``'s (a :class:`~forensic.runtime.RuntimeConfig`;
    default ``$FORENSIC_CACHE``), else ``~/.cache/forensic``.

    Raises:
        WeightsUnavailable: the checkpoints (or the public bases) cannot be fetched.
    """
    from ..presets import PAPER_WEIGHTS_FILES, PAPER_WEIGHTS_REPO
    from ..weights import cache_root, hub_file

    folder = Path(cache_dir) if cache_dir else cache_root(runtime) / ("paper-seed" + (f"-{revision[:12]}" if revision else ""))
    if (folder / "config.json").is_file() and all((folder / f"{s}.safetensors").is_file() for s in PAPER_WEIGHTS_FILES):
        return folder
    staging = folder.with_name(folder.name + ".partial")
    if staging.exists():
        import shutil

        shutil.rmtree(staging)
    paths = {stream: hub_file(PAPER_WEIGHTS_REPO, name, revision=revision) for stream, name in PAPER_WEIGHTS_FILES.items()}
    for stream, path in paths.items():
        report = convert_seed(path, stream=stream, out=staging)
        for note in report.notes:
            log.warning(note)
    staging.rename(folder)  # only a complete conversion is ever used
    return folder
