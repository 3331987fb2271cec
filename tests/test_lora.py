"""LoRA adapters on a shared base: grouped = separate q/k/v adapters, routing, thread isolation."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from forensic.lora import AdapterBank, AdapterRouter, LoRA, LoraConfig


def assert_close_scaled(actual: torch.Tensor, expected: torch.Tensor, rel: float = 1e-5) -> None:
    """Equal up to float32 rounding, measured against the largest value (~100 here): a summation
    order that changes with the thread count or the kernel moves the last bits of every term."""
    torch.testing.assert_close(actual, expected, rtol=rel, atol=rel * float(expected.detach().abs().max()))


def _randn(*shape: int, seed: int) -> torch.Tensor:
    """Inputs from their own generator: the same values whatever ran before (any test order)."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _random_lora(in_f, out_f, *, rank, groups, seed):
    lora = LoRA(in_f, out_f, rank=rank, groups=groups, scaling=2.0)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        lora.lora_A.copy_(torch.randn(lora.lora_A.shape, generator=gen))
        lora.lora_B.copy_(torch.randn(lora.lora_B.shape, generator=gen))
    return lora


def test_grouped_adapter_equals_three_separate_adapters():
    """One rank-3r adapter with block-diagonal B == separate rank-r adapters on q, k and v."""
    d, r = 12, 2
    lora = _random_lora(d, 3 * d, rank=r, groups=3, seed=0)
    x = _randn(5, d, seed=1)
    a = lora.lora_A.detach().unflatten(0, (3, r))
    separate = torch.cat([2.0 * (x @ a[g].t()) @ lora.lora_B[g].detach().t() for g in range(3)], dim=-1)
    assert_close_scaled(lora(x).detach(), separate)
    # and as one dense update: W' = W + 2.0 * B @ A with B block-diagonal (3d x 3r)
    block_b = torch.block_diag(*[lora.lora_B[g].detach() for g in range(3)])
    dense = 2.0 * block_b @ lora.lora_A.detach()
    assert_close_scaled(lora.delta_weight().detach(), dense)
    assert_close_scaled(x @ dense.t(), lora(x).detach())


def test_new_adapter_starts_as_identity():
    lora = LoRA(8, 24, rank=2, groups=3)
    assert torch.count_nonzero(lora.lora_B) == 0
    assert torch.equal(lora(torch.randn(3, 8)), torch.zeros(3, 24))


class _Base(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(6, 18)
        self.attn.proj = nn.Linear(6, 6)

    def forward(self, x):
        return self.attn.proj(self.attn.qkv(x)[..., :6])


@pytest.fixture()
def routed():
    with torch.random.fork_rng():  # the base's initialisation, the same in any test order
        torch.manual_seed(0)
        base = _Base()
    cfg = LoraConfig(rank=2, alpha=4.0, dropout=0.0)
    banks = nn.ModuleDict({name: AdapterBank.for_model(base, cfg) for name in ("a", "b")})
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in banks.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    return base, banks, AdapterRouter(base, banks)


def test_routes_select_adapters_and_mixed_batches_match(routed):
    base, banks, router = routed
    x = _randn(4, 6, seed=2)
    plain = base(x)
    with router.route("a"):
        out_a = base(x)
    with router.route("b"):
        out_b = base(x)
    assert not torch.allclose(out_a, plain) and not torch.allclose(out_a, out_b)
    assert torch.equal(base(x), plain)  # outside a route: the base alone
    with router.route(("a", "b", "b", "a")):
        mixed = base(x)
    expected = torch.stack([out_a[0], out_b[1], out_b[2], out_a[3]])
    assert_close_scaled(mixed, expected)  # values up to ~100: per-row and whole-batch matmuls round differently
    assert banks["a"].targets() == ["attn.qkv", "attn.proj"]
    assert banks["a"].get("attn.qkv").groups == 3 and banks["a"].get("attn.proj").groups == 1


def test_unknown_route_and_wrong_batch_are_errors(routed):
    base, _, router = routed
    with pytest.raises(KeyError, match="no adapter named 'c'"):
        with router.route("c"):
            pass
    with pytest.raises(ValueError, match="batch has 3"):
        with router.route(("a", "b")):
            base(torch.randn(3, 6))


def test_routes_are_per_thread(routed):
    """A web server's threads each see their own route (ContextVar), never another's."""
    base, _, router = routed
    x = _randn(2, 6, seed=3)
    with router.route("a"):
        ref_a = base(x)
    with router.route("b"):
        ref_b = base(x)
    barrier = threading.Barrier(2)
    results = {}

    def work(name):
        with router.route(name):
            barrier.wait()
            outs = [base(x) for _ in range(20)]
        results[name] = outs

    threads = [threading.Thread(target=work, args=(n,)) for n in ("a", "b")]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert all(torch.equal(o, ref_a) for o in results["a"])
    assert all(torch.equal(o, ref_b) for o in results["b"])
