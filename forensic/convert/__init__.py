"""Convert the authors' published checkpoints into our weights format.

The authors saved ``torch.save(wrapper.state_dict())`` of Hugging Face ``transformers`` models
(DINOv2 wrapped in ``peft`` LoRA on query/key/value/output.dense; a frozen ``CLIPVisionModel`` in
the fusion stream). Keys look like
``backbone.vision_model.base_model.model.encoder.layer.3.attention.attention.query.lora_A.default.weight``,
possibly with a leading ``module.``. This package maps every key to timm / open_clip names and to our
per-stream adapter + head file. A key it cannot map is an error that lists it (the authors'
own loader turned strict key checking off and would silently have ignored it).

Only tensors are read (``torch.load(weights_only=True)``): no pickled code runs. A checkpoint
that holds anything else, or is empty or truncated, is one :class:`ConversionError` line.

Modules: :mod:`~forensic.convert.checkpoint` (reading a checkpoint, tensors only),
:mod:`~forensic.convert.keys` (the authors' keys to timm, open_clip and our stream file),
:mod:`~forensic.convert.adapters` (peft LoRA to our adapters), :mod:`~forensic.convert.verify`
(names, shapes and bases checked), :mod:`~forensic.convert.folder` (:func:`convert_seed` writes a
weights folder), :mod:`~forensic.convert.paper` (the ``paper`` preset's weights, downloaded and
converted once) and :mod:`~forensic.convert.errors` (:class:`ConversionError`).
"""

from .checkpoint import SeedCheckpoint, read_seed_checkpoint
from .errors import ConversionError
from .folder import ConversionReport, convert_seed
from .paper import paper_seed_weights

__all__ = ["ConversionError", "SeedCheckpoint", "ConversionReport", "read_seed_checkpoint", "convert_seed", "paper_seed_weights"]
