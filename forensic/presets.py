"""Architecture presets: ``paper``, ``small`` and ``tiny-random``.

========== ============================================ ===================================
preset     backbones                                    weights
========== ============================================ ===================================
paper      DINOv2-giant/14 + CLIP ViT-L/14 (OpenAI)     the authors' checkpoints (Hub), converted once
small      DINOv2-small/14 + CLIP ViT-B/16 (OpenAI)     ours, from ``python -m train`` (pass ``--weights``)
tiny-random tiny ViTs from config, random init          none: for tests and offline walkthroughs
========== ============================================ ===================================
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import BackboneSpec, HeadConfig, ModelConfig, StreamConfig, VoteConfig
from .lora import LoraConfig

__all__ = ["Preset", "Published", "PRESETS", "PAPER_PUBLISHED", "get_preset", "preset_names", "PAPER_WEIGHTS_REPO",
           "PAPER_WEIGHTS_FILES"]

#: the authors' published checkpoints
PAPER_WEIGHTS_REPO = "lpmkhoa/hcmusaqua-ntire26-weights"
PAPER_WEIGHTS_FILES = {"texture": "dinov2_252.pth", "face": "dinov2_252_crop.pth", "fusion": "dinov2_clip.pth"}


@dataclass(frozen=True)
class Published:
    """What the authors of a preset's default weights published about them, and nothing more.

    Each field is one or two sentences for a reader of the app, the report and the model card
    (:mod:`forensic.limits` renders them); a fact not published is said to be unknown.

    Attributes:
        trained_on: the training data and how it was degraded.
        validation: the published figures (a challenge placing, error rates) and what they rest on.
        calibration: what "calibrated" means for these weights.
    """

    trained_on: str
    validation: str
    calibration: str


#: the NTIRE 2026 paper's published facts (arXiv 2604.25889 and the authors' code)
PAPER_PUBLISHED = Published(
    trained_on=(
        "the authors' NTIRE 2026 Robust Deepfake Detection checkpoints: training images mostly 256x256 face-centred "
        "crops (DeepfakeBench preprocessing); the challenge supplied a training set of 1,000 images (500 real, 500 fake); "
        "half the training images were degraded by the paper's compound engine (validation images clean). "
        "Which generators made the fakes is not stated in what the authors published."
    ),
    validation=(
        "published: 4th place in the NTIRE 2026 Robust Deepfake Detection challenge (CVPR 2026 workshop; 337 participants, "
        "57 final submissions), ranked by ROC AUC on an unseen test set with common and uncommon degradations. "
        "Error rates on other data: not measured for these weights."
    ),
    calibration=(
        "no temperature or Platt scaling was fitted: the authors' \"calibrated\" vote is the fixed stream weights "
        "(texture 2, face 1, fusion 2) and rounding to 0.1."
    ),
)


@dataclass(frozen=True)
class Preset:
    """A named architecture and where its default weights come from.

    Attributes:
        name: preset name.
        config: the model configuration (architecture, preprocessing, vote).
        weights: where trained weights come from by default: ``"paper-seed"`` (the authors'
            checkpoints, converted), a ``hf-hub:owner/repo`` reference, or None (none published;
            for ``tiny-random`` the random initialisation *is* the model).
        hardware: who it is for, in words.
        published: what the authors of the default weights published about them (None: nothing).
    """

    name: str
    config: ModelConfig
    weights: str | None
    hardware: str
    published: Published | None = None


def _streams(*, size: int, fusion_size: int, face_size: int, fusion_hidden: int) -> tuple[StreamConfig, ...]:
    return (
        StreamConfig(name="texture", input="center-crop", size=size),
        StreamConfig(name="face", input="face-crop", size=size, face_size=face_size),
        StreamConfig(
            name="fusion",
            input="resize",
            size=fusion_size,
            uses_clip=True,
            head=HeadConfig(kind="mlp", hidden=fusion_hidden, dropout=0.2),
        ),
    )


_PAPER = ModelConfig(
    preset="paper",
    description="The NTIRE 2026 4th-place method: DINOv2-giant + LoRA (three streams), CLIP ViT-L/14 in the fusion stream.",
    dinov2=BackboneSpec(
        family="dinov2",
        arch="vit_giant_patch14_dinov2",
        hub_id="timm/vit_giant_patch14_dinov2.lvd142m",
        filename="model.safetensors",
        revision="dd22bb6485eeb29d67273f76d983061298bdc7f0",
    ),
    clip=BackboneSpec(
        family="clip",
        arch="ViT-L-14-quickgelu",
        hub_id="timm/vit_large_patch14_clip_224.openai",
        filename="open_clip_model.safetensors",
    ),
    lora=LoraConfig(rank=32, alpha=64.0, dropout=0.15),
    streams=_streams(size=252, fusion_size=224, face_size=256, fusion_hidden=512),
    vote=VoteConfig(),
)

_SMALL = ModelConfig(
    preset="small",
    description="A CPU-sized variant of the method: DINOv2-small + LoRA, CLIP ViT-B/16 in the fusion stream.",
    dinov2=BackboneSpec(
        family="dinov2",
        arch="vit_small_patch14_dinov2",
        hub_id="timm/vit_small_patch14_dinov2.lvd142m",
        filename="model.safetensors",
    ),
    clip=BackboneSpec(
        family="clip",
        arch="ViT-B-16-quickgelu",
        hub_id="timm/vit_base_patch16_clip_224.openai",
        filename="open_clip_model.safetensors",
    ),
    lora=LoraConfig(rank=16, alpha=32.0, dropout=0.1),
    streams=_streams(size=252, fusion_size=224, face_size=256, fusion_hidden=256),
    vote=VoteConfig(),
)

# The same token grids as the paper (18x18 at 252, 16x16 at 224) with a small width and two blocks:
# everything downstream (Score-CAM grids, entropy maxima) behaves as with the real model. The
# width (192 channels at the Score-CAM layer) keeps the channel/token ratio of a real ViT enough for
# the fast Score-CAM's grouping to be meaningful; it still runs in milliseconds.
_TINY = ModelConfig(
    preset="tiny-random",
    description="Tiny random ViTs with the paper's structure (SwiGLU, LayerScale, LoRA); untrained, for tests and demos.",
    untrained=True,
    dinov2=BackboneSpec(
        family="dinov2",
        arch="vit_giant_patch14_dinov2",
        overrides={"embed_dim": 192, "depth": 2, "num_heads": 4, "init_values": 1.0},
        init_seed=0,
    ),
    clip=BackboneSpec(
        family="clip",
        arch="ViT-B-16-quickgelu",
        overrides={"embed_dim": 32, "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "patch_size": 14, "head_width": 32}},
        init_seed=1,
    ),
    lora=LoraConfig(rank=4, alpha=8.0, dropout=0.0),
    streams=_streams(size=252, fusion_size=224, face_size=256, fusion_hidden=32),
    vote=VoteConfig(),
)

PRESETS: dict[str, Preset] = {
    "paper": Preset("paper", _PAPER, weights="paper-seed", hardware="GPU (about 6 GB of weights in float32, 3 GB in bf16)",
                    published=PAPER_PUBLISHED),
    "small": Preset("small", _SMALL, weights=None, hardware="CPU, e.g. a free 2-CPU Hugging Face Space"),
    "tiny-random": Preset("tiny-random", _TINY, weights=None, hardware="anything; outputs are meaningless (untrained)"),
}


def preset_names() -> list[str]:
    return list(PRESETS)


def get_preset(name: str) -> Preset:
    """Returns the preset called ``name`` or raises ``KeyError`` listing the valid names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None
