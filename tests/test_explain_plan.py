"""Runtime settings read once; the explanation plan's rules (CPU and, on plain numbers, GPU); the GPU
code paths (lockstep streams, kept merged weights, shared batches across streams) run on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forensic.explain import StreamInputs, check_method, explain_streams, explanation_lock, method_names, plan_for
from forensic.explain.engine import drive_all
from forensic.explain.merged import MergedStreamCopy
from forensic.explain.plan import GPU_MAX_BATCH, ExplainPlan, cam_dtype, decide
from forensic.explain.types import ChannelScores, ScoreReply, ScoreRequest
from forensic.model import ForensicModel
from forensic.presets import get_preset
from forensic.runtime import RuntimeConfig, RuntimeConfigError, default_runtime
from forensic.streams import prepare_input, to_tensor

TINY = get_preset("tiny-random").config
GB = 1024**3


@pytest.fixture(scope="module")
def tiny():
    return ForensicModel.random(TINY, seed=0).eval()


# ------------------------------------------------------------------------------ runtime settings
def test_runtime_config_reads_every_variable_once():
    env = {
        "FORENSIC_PRESET": "small", "FORENSIC_WEIGHTS": "hf-hub:me/w", "FORENSIC_DEVICE": "cuda:1", "FORENSIC_DTYPE": "BF16",
        "FORENSIC_CACHE": "/tmp/c", "FORENSIC_MAX_PIXELS": "1_000_000", "FORENSIC_CAM_BF16": "0", "FORENSIC_COMPILE": "yes",
    }
    cfg = RuntimeConfig.from_env(env)
    assert (cfg.preset, cfg.weights, cfg.device, cfg.dtype) == ("small", "hf-hub:me/w", "cuda:1", "bf16")
    assert str(cfg.cache_dir) == "/tmp/c" and cfg.max_pixels == 1_000_000 and cfg.cam_bf16 is False and cfg.compile is True
    assert RuntimeConfig.from_env({}) == RuntimeConfig()  # nothing set: defaults (bf16 Score-CAM allowed, no compile)
    assert cfg.replace(device=None, dtype="float32").device == "cuda:1"  # unset flags keep the environment's value
    assert cfg.to_dict()["cache_dir"] == "/tmp/c"


@pytest.mark.parametrize(
    ("name", "value"), [("FORENSIC_MAX_PIXELS", "-3"), ("FORENSIC_MAX_PIXELS", "lots"), ("FORENSIC_CAM_BF16", "maybe"), ("FORENSIC_DTYPE", "int8")]
)
def test_runtime_config_refuses_bad_values_in_one_line(name, value):
    with pytest.raises(RuntimeConfigError, match=name) as err:
        RuntimeConfig.from_env({name: value})
    assert "\n" not in str(err.value)


def test_default_runtime_is_parsed_once_per_environment(monkeypatch):
    """The same environment gives the same (cached) object; a variable set later is obeyed."""
    monkeypatch.setenv("FORENSIC_CAM_BF16", "0")
    first = default_runtime()
    assert default_runtime() is first and first.cam_bf16 is False
    monkeypatch.setenv("FORENSIC_CAM_BF16", "1")
    assert default_runtime().cam_bf16 is True
    monkeypatch.setenv("FORENSIC_MAX_PIXELS", "lots")
    with pytest.raises(RuntimeConfigError, match="FORENSIC_MAX_PIXELS"):
        default_runtime()


def test_the_cli_and_the_app_share_one_set_of_model_options(monkeypatch):
    """Flags given win over the environment; flags left out keep it (forensic.options)."""
    import argparse

    from forensic.options import add_model_args, runtime_from_args

    import torch

    parser = argparse.ArgumentParser()
    add_model_args(parser)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # the device check sees two GPUs
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("FORENSIC_PRESET", "small")
    monkeypatch.setenv("FORENSIC_DEVICE", "cuda:1")
    runtime = runtime_from_args(parser.parse_args(["--device", "cpu", "--compile"]))
    assert (runtime.preset, runtime.device, runtime.compile) == ("small", "cpu", True)
    assert runtime_from_args(parser.parse_args([])).device == "cuda:1"
    with pytest.raises(SystemExit):
        parser.parse_args(["--preset", "huge"])


# ------------------------------------------------------------------------------ the plan's rules
def test_method_names_are_checked_in_one_place():
    assert method_names() == ("fast", "adaptive", "exact") and method_names(allow_none=True)[-1] == "none"
    assert check_method("exact") == "exact" and check_method("none", allow_none=True) == "none"
    with pytest.raises(ValueError, match="use one of: fast, adaptive, exact$"):
        check_method("none")
    with pytest.raises(ValueError, match="'grad'"):
        check_method("grad", allow_none=True)


@pytest.mark.parametrize("bf16_cpu", [True, False])
def test_cpu_plan_merges_and_uses_bf16_only_where_the_cpu_has_it(tiny, monkeypatch, bf16_cpu):
    import forensic.explain.plan as plan_mod

    monkeypatch.setattr(plan_mod, "fast_cpu_bf16", lambda: bf16_cpu)
    plan = plan_for(tiny, runtime=RuntimeConfig())
    assert plan.merged and not plan.keep_merged and not plan.lockstep and not plan.batch_streams and plan.autocast is None
    assert plan.dtype == (torch.bfloat16 if bf16_cpu else torch.float32) and plan.batch_size == 32
    assert plan_for(tiny, runtime=RuntimeConfig(cam_bf16=False)).dtype == torch.float32  # FORENSIC_CAM_BF16=0
    assert cam_dtype(torch.device("cpu"), torch.bfloat16, RuntimeConfig(cam_bf16=False)) == torch.bfloat16  # bf16 weights stay bf16


def test_gpu_plan_rules_on_plain_numbers():
    """`paper` in bf16 on an 80 GB card: merged copies kept per stream, big batches; on a small card: shared batches."""
    paper = ForensicModel(get_preset("paper").config, device="meta").to(torch.bfloat16)  # the structure, no weights
    copy = MergedStreamCopy.extra_bytes(paper, torch.bfloat16, streams=3)
    assert 2.0 * GB < copy < 2.5 * GB  # qkv + proj of 40 giant blocks, three streams
    assert MergedStreamCopy.extra_bytes(paper.float(), torch.bfloat16, streams=3) > copy + 2.5 * GB  # float32 weights: a full bf16 copy too
    cuda = torch.device("cuda")
    big = decide(cuda, torch.bfloat16, torch.bfloat16, free_bytes=75 * GB, copy_bytes=copy, image_bytes=16e6)
    assert big.merged and big.keep_merged and big.lockstep and not big.batch_streams and big.autocast is None
    assert big.batch_size == GPU_MAX_BATCH and big.grad_budget_bytes == pytest.approx(0.6 * (75 * GB - copy))
    small = decide(cuda, torch.bfloat16, torch.bfloat16, free_bytes=6 * GB, copy_bytes=copy, image_bytes=16e6)
    assert not small.merged and small.batch_streams and small.lockstep and small.autocast is None and small.batch_size < GPU_MAX_BATCH
    fp32 = decide(cuda, torch.float32, torch.bfloat16, free_bytes=6 * GB, copy_bytes=copy, image_bytes=16e6)
    assert fp32.autocast == torch.bfloat16  # float32 weights on the shared model: bf16 autocast
    forced = decide(cuda, torch.bfloat16, torch.bfloat16, free_bytes=6 * GB, copy_bytes=copy, image_bytes=16e6, prefer="merged")
    assert forced.merged
    assert 30 <= big.grad_batch_size(paper, "texture", (252, 252)) <= GPU_MAX_BATCH  # ~1.2 GB kept per image


def test_explanation_lock_is_per_model(tiny):
    other = ForensicModel.random(TINY, seed=1)
    assert explanation_lock(tiny) is explanation_lock(tiny) and explanation_lock(tiny) is not explanation_lock(other)


# ------------------------------------------------------------------------------ the engine
def test_lockstep_queues_every_streams_round_before_reading_any_result():
    order = []

    def method(name, rounds):
        for r in range(rounds):
            reply = yield ScoreRequest(torch.zeros(2, 1, 1))
            order.append(("read", name, r))
            assert reply.scores.shape == (2,)
        return ChannelScores(torch.full((2,), float(rounds)))

    def execute(requests):
        order.extend(("run", n) for n in requests)
        return {n: ScoreReply(torch.zeros(2)) for n in requests}

    tasks = {n: type("T", (), {"generator": method(n, k), "scorer": None})() for n, k in (("a", 2), ("b", 1))}
    results = drive_all(tasks, lockstep=True, execute=execute)
    assert order[:2] == [("run", "a"), ("run", "b")]  # both streams' first round queued first
    assert order[2:] == [("read", "a", 0), ("read", "b", 0), ("run", "a"), ("read", "a", 1)]
    assert [float(results[n].scores[0]) for n in ("a", "b")] == [2.0, 1.0]


def _inputs(model, image):
    out = {}
    for name in model.stream_names:
        cfg = model.config.stream("texture" if name == "face" else name)  # the face stream's no-face fallback
        x = to_tensor(prepare_input(image, cfg).pixels, cfg)
        with torch.no_grad():
            out[name] = StreamInputs(x, model.forward_stream(name, x, return_norm1=True).last_norm1)
    return out


@pytest.mark.slow
def test_gpu_code_paths_give_the_cpu_path_maps(tiny, astronaut):
    """Lockstep with kept merged weights, and shared batches (texture + face in one base pass),
    run here on the CPU: the same maps and pass counts as the CPU plan (stream by stream)."""
    inputs = _inputs(tiny, astronaut)
    cpu = plan_for(tiny, runtime=RuntimeConfig(cam_bf16=False))
    base = dict(device=cpu.device, dtype=torch.float32, autocast=None, lockstep=True, batch_size=32, grad_budget_bytes=1e9, reason="test")
    plans = {
        "cpu": cpu,
        "merged": ExplainPlan(merged=True, keep_merged=True, batch_streams=False, **base),
        "shared": ExplainPlan(merged=False, keep_merged=False, batch_streams=True, **base),
    }
    cams = {k: explain_streams(tiny, inputs, method="fast", plan=p, n_groups=6, max_passes=12) for k, p in plans.items()}
    for name in tiny.stream_names:
        ref = cams["cpu"][name]
        for k in ("merged", "shared"):
            got = cams[k][name]
            assert got.forward_passes == ref.forward_passes <= 12 and got.backward_passes == ref.backward_passes == 6
            assert np.abs(got.input_map - ref.input_map).max() < 1e-3, (k, name)
            assert got.fidelity.checked == ref.fidelity.checked


@pytest.mark.slow
def test_adaptive_finishes_in_lockstep_with_shared_batches_as_exact(tiny, astronaut):
    """The adaptive method's extra request (the unchecked channels) rides the lockstep rounds and the
    shared texture + face batches like any other: each finished map is the exact map."""
    inputs = _inputs(tiny, astronaut)
    cpu = plan_for(tiny, runtime=RuntimeConfig(cam_bf16=False))
    shared = ExplainPlan(merged=False, keep_merged=False, batch_streams=True, device=cpu.device, dtype=torch.float32,
                         autocast=None, lockstep=True, batch_size=32, grad_budget_bytes=1e9, reason="test")
    exact = explain_streams(tiny, inputs, method="exact", plan=cpu)
    adaptive = explain_streams(tiny, inputs, method="adaptive", plan=shared, n_groups=6, max_passes=12, min_fidelity=1.0)
    for name in tiny.stream_names:
        got = adaptive[name]
        assert got.method == "adaptive" and got.fidelity.level == "exact" and got.fidelity.checked == 192
        assert 192 < got.forward_passes <= 12 + 192 and got.backward_passes == 6
        assert np.abs(got.input_map - exact[name].input_map).max() < 1e-3, name
