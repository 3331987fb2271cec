"""The planted-artifact toy set and few-step trainer, now in the library (:mod:`forensic.toy`).

Re-exported here for the tests that import ``tests.toy``.
"""

from __future__ import annotations

from forensic.toy import (  # noqa: F401  (re-exports)
    ARTIFACT_BOX,
    plant,
    smooth_texture,
    toy_set,
    train_stream,
    write_toy_folder,
    write_unlabelled_folder,
)
