"""The shared-base model: one copy of the base, streams independent, faithful position embeddings."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from forensic.model import ForensicModel
from forensic.presets import get_preset

TINY = get_preset("tiny-random").config


@pytest.fixture(scope="module")
def model():
    return ForensicModel.random(TINY, seed=0).eval()


def _x(size, seed=0, n=1):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_streams_share_the_same_base_tensors(model):
    """Every stream runs on the same base storage: no per-stream (or per-resolution) copy."""
    ptrs = {p.data_ptr() for p in model.dinov2.parameters()}
    assert len(ptrs) == sum(1 for _ in model.dinov2.parameters())
    n_base = sum(p.numel() for p in model.dinov2.parameters())
    n_all = sum(p.numel() for p in model.parameters())
    n_adapters = sum(p.numel() for p in model.adapters.parameters())
    n_heads = sum(p.numel() for p in model.heads.parameters())
    n_clip = sum(p.numel() for p in model.clip.parameters())
    assert n_all == n_base + n_clip + n_adapters + n_heads  # the base is counted once
    # running a stream at 252 and one at 224 leaves the single pos_embed untouched
    before = model.dinov2.vit.pos_embed.detach().clone()
    with torch.no_grad():
        model.forward_stream("texture", _x(252))
        model.forward_stream("fusion", _x(224))
    assert torch.equal(model.dinov2.vit.pos_embed, before)
    qkv = model.dinov2.vit.blocks[0].attn.qkv.weight
    assert all(b.get("blocks.0.attn.qkv").lora_A.data_ptr() != qkv.data_ptr() for b in model.adapters.values())


def test_running_one_stream_does_not_change_another(model):
    x = _x(252, seed=1)
    with torch.no_grad():
        face_before = model.forward_stream("face", x).logits.clone()
        for _ in range(3):
            model.forward_stream("texture", x)
            model.forward_stream("fusion", _x(224, seed=2))
        face_after = model.forward_stream("face", x).logits
        texture = model.forward_stream("texture", x).logits
    assert torch.equal(face_before, face_after)
    assert not torch.allclose(texture, face_after)  # the adapters (and heads) really differ


def test_batched_streams_equal_one_by_one(model):
    x252, x224 = _x(252, 3, n=2), _x(224, 4)
    with torch.no_grad():
        together = model.forward_streams({"texture": x252, "face": x252, "fusion": x224})
        for name, x in (("texture", x252), ("face", x252), ("fusion", x224)):
            alone = model.forward_stream(name, x)
            assert torch.allclose(together[name].logits, alone.logits, atol=1e-5)
            assert torch.allclose(together[name].cls, alone.cls, atol=1e-5)


def test_position_embeddings_are_resized_without_antialiasing(model):
    pos = model.dinov2.vit.pos_embed.detach()
    grid = pos[:, 1:].reshape(1, 37, 37, -1).permute(0, 3, 1, 2)
    ours = model.dinov2.pos_embed_for((18, 18))[:, 1:].reshape(1, 18, 18, -1).permute(0, 3, 1, 2)
    plain = F.interpolate(grid, size=(18, 18), mode="bicubic", align_corners=False, antialias=False)
    smooth = F.interpolate(grid, size=(18, 18), mode="bicubic", align_corners=False, antialias=True)
    assert torch.allclose(ours, plain, atol=1e-6)
    assert (ours - smooth).abs().max() > 1e-2  # timm's default (antialias) would differ
    assert torch.equal(model.dinov2.pos_embed_for((18, 18))[:, :1], pos[:, :1])  # CLS position kept


def test_cls_attention_equals_timm_non_fused_attention(model):
    """Our explicit CLS-attention row equals the weights timm materialises with fused attention off."""
    x = _x(252, seed=5)
    captured = []
    attn = model.dinov2.vit.blocks[-1].attn
    handle = attn.attn_drop.register_forward_hook(lambda m, i, o: captured.append(o.detach()))
    model.dinov2.set_fused_attention(False)
    try:
        with torch.no_grad(), model.router.route("texture"):
            out = model.dinov2(x, return_attention=True)
    finally:
        handle.remove()
        model.dinov2.set_fused_attention(True)
    full = captured[-1]  # (B, heads, N, N)
    row = full[:, :, 0, 1:]
    expected = row / row.sum(-1, keepdim=True)
    assert out.cls_attention.shape == (1, 4, 324)
    assert torch.allclose(out.cls_attention, expected, atol=1e-6)
    assert torch.allclose(out.cls_attention.sum(-1), torch.ones(1, 4), atol=1e-6)


def test_meta_build_allocates_nothing():
    model = ForensicModel(TINY, device="meta")
    assert all(p.is_meta for p in model.parameters())


def test_clip_batch_first_attention_equals_torch_multihead_attention():
    """Our attention for the CLIP tower gives nn.MultiheadAttention's outputs and input gradients."""
    import copy

    import open_clip

    from forensic.backbones import BatchFirstSelfAttention, ClipVision

    cfg = open_clip.get_model_config("ViT-B-16-quickgelu")
    vision = dict(cfg["vision_cfg"], layers=2, width=128, head_width=32)
    reference = open_clip.model._build_vision_tower(cfg["embed_dim"], vision, quick_gelu=True).eval()
    reference.proj = None
    ours = ClipVision(copy.deepcopy(reference)).eval()
    assert isinstance(ours.visual.transformer.resblocks[0].attn, BatchFirstSelfAttention)
    assert sorted(ours.visual.state_dict()) == sorted(reference.state_dict())
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0), requires_grad=True)
    w = torch.randn(128, generator=torch.Generator().manual_seed(1))
    out_ref, out_ours = reference(x), ours(x)
    assert torch.allclose(out_ours, out_ref, atol=1e-5)
    (g_ref,) = torch.autograd.grad((out_ref * w).sum(), x)
    (g_ours,) = torch.autograd.grad((out_ours * w).sum(), x)
    assert g_ref.abs().max() > 1e-4 and torch.allclose(g_ours, g_ref, atol=1e-5 * g_ref.abs().max())


def test_load_stream_state_dict_is_strict_and_touches_one_stream():
    model = ForensicModel.random(TINY, seed=0)
    other = ForensicModel.random(TINY, seed=1)
    face_before = {k: v.clone() for k, v in model.stream_state_dict("face").items()}
    model.load_stream_state_dict("texture", other.stream_state_dict("texture"))
    for key, value in other.stream_state_dict("texture").items():
        assert torch.equal(model.stream_state_dict("texture")[key], value)
    assert all(torch.equal(model.stream_state_dict("face")[k], v) for k, v in face_before.items())
    head_only = {k: v for k, v in other.stream_state_dict("face").items() if k.startswith("head.")}
    model.load_stream_state_dict("face", head_only, parts=("head",))
    assert torch.equal(model.heads["face"].weight, other.heads["face"].weight)
    broken = dict(other.stream_state_dict("texture"))
    broken.pop("head.bias")
    with pytest.raises(ValueError, match="head.bias"):
        model.load_stream_state_dict("texture", broken)
    broken = dict(other.stream_state_dict("texture"), **{"head.weight": torch.zeros(2, 7)})
    with pytest.raises(ValueError, match="shape"):
        model.load_stream_state_dict("texture", broken)


@pytest.mark.parametrize("mask", [None, "bool", "float"])
def test_explicit_attention_equals_sdpa_with_gradients(mask):
    """attend's explicit path (CPU + autograd) gives SDPA's outputs and gradients."""
    from forensic.backbones import attend

    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 17, 8, generator=gen, requires_grad=True) for _ in range(3))
    attn_mask = None
    if mask == "bool":
        attn_mask = torch.rand(17, 17, generator=gen) > 0.3
        attn_mask.fill_diagonal_(True)
    elif mask == "float":
        attn_mask = torch.randn(17, 17, generator=gen)
    w = torch.randn(2, 3, 17, 8, generator=gen)
    results = []
    for explicit in (False, True):
        out = attend(q, k, v, attn_mask=attn_mask, scale=0.3, explicit=explicit)
        results.append((out, torch.autograd.grad((out * w).sum(), (q, k, v))))
    (ref, ref_grads), (ours, our_grads) = results
    assert torch.allclose(ours, ref, atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(our_grads, ref_grads))


def test_attend_chooses_explicit_only_while_recording_in_low_precision_on_the_cpu():
    from forensic.backbones import attend

    dropout = torch.nn.Dropout(0.0)
    seen = []
    dropout.register_forward_hook(lambda m, i, o: seen.append(o))
    low = torch.randn(1, 1, 4, 8, dtype=torch.bfloat16)
    attend(low, low, low, dropout=dropout)  # no autograd: SDPA, weights never materialised
    attend(low.float().requires_grad_(True), low.float(), low.float(), dropout=dropout)  # float32: SDPA
    assert not seen
    attend(low.requires_grad_(True), low, low, dropout=dropout)
    assert len(seen) == 1 and seen[0].shape == (1, 1, 4, 4) and seen[0].dtype == torch.bfloat16


def test_dinov2_attention_equals_timm_attention():
    """ViTSelfAttention (what DinoV2 runs) equals timm's Attention, forward and input gradients, fused or not."""
    import copy

    from timm.models.vision_transformer import Attention

    from forensic.backbones import ViTSelfAttention

    reference = Attention(64, num_heads=4, qkv_bias=True).eval()
    torch.nn.init.normal_(reference.qkv.bias)
    assert ViTSelfAttention.supports(reference)
    ours = ViTSelfAttention(copy.deepcopy(reference)).eval()
    assert sorted(ours.state_dict()) == sorted(reference.state_dict())
    x = torch.randn(2, 10, 64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    for fused in (True, False):
        reference.fused_attn = ours.fused_attn = fused
        out_ref, out_ours = reference(x), ours(x)
        assert torch.allclose(out_ours, out_ref, atol=1e-5)
        (g_ref,) = torch.autograd.grad(out_ref.square().sum(), x)
        (g_ours,) = torch.autograd.grad(out_ours.square().sum(), x)
        assert torch.allclose(g_ours, g_ref, atol=1e-4)
        with torch.no_grad():
            assert torch.allclose(ours(x), reference(x), atol=1e-5)


def test_dinov2_blocks_use_our_attention_and_keep_lora(model):
    from forensic.backbones import ViTSelfAttention

    assert all(isinstance(blk.attn, ViTSelfAttention) for blk in model.dinov2.vit.blocks)
    x = _x(252, seed=2)
    with torch.no_grad():
        base = model.dinov2(x).cls
        with model.router.route("texture"):
            adapted = model.dinov2(x).cls
    assert (adapted - base).abs().max() > 1e-3  # the adapters' hooks on attn.qkv still fire


def test_cast_copy_is_independent_and_close(model):
    copy = model.cast_copy(torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for p in copy.parameters())
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert sorted(copy.state_dict()) == sorted(model.state_dict())
    x = _x(252, seed=3)
    with torch.no_grad():
        ref = model.forward_stream("texture", x).logits
        low = copy.forward_stream("texture", x.bfloat16()).logits.float()
    assert torch.allclose(low, ref, atol=0.05 * ref.abs().max() + 0.05)
    with torch.no_grad():
        for p in copy.parameters():
            p.zero_()
        for p in model.cast_copy(torch.float32).parameters():  # same dtype: still a copy
            p.zero_()
        assert torch.equal(model.forward_stream("texture", x).logits, ref)  # the original shares nothing


def test_merged_stream_copy_runs_each_stream_like_the_hooks(model):
    """Adapters folded into the weights give the hooked model's outputs; switching never drifts."""
    from forensic.explain.merged import MergedStreamCopy

    copy = MergedStreamCopy(model, torch.float32)
    assert not copy.model.router._handles  # no adapter hooks on the copy
    ours, theirs = copy.model.dinov2.vit.blocks[0], model.dinov2.vit.blocks[0]
    assert ours.mlp.fc1.weight.data_ptr() == theirs.mlp.fc1.weight.data_ptr()  # same dtype: shared
    assert ours.attn.qkv.weight.data_ptr() != theirs.attn.qkv.weight.data_ptr()  # but not what select() writes
    x = {n: _x(TINY.stream(n).size, seed=4) for n in model.stream_names}
    with torch.no_grad():
        expected = {n: model.forward_stream(n, x[n]).logits for n in model.stream_names}
        first = {}
        for name in (*model.stream_names, *model.stream_names):  # twice: re-selecting must not accumulate
            got = copy.select(name).forward_stream(name, x[name]).logits
            assert torch.allclose(got, expected[name], atol=1e-4), name
            first.setdefault(name, got)
            assert torch.equal(got, first[name])
    with pytest.raises(ValueError, match="merged"):
        copy.model.forward_stream("texture" if name != "texture" else "face", x["texture"])
    assert model.merged_stream is None and len(model.router._handles) > 0  # the source is untouched
