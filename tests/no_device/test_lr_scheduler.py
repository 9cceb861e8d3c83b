"""Learning-rate schedulers against their closed-form formulas (MXNet 1.9),
warmup included, and against values printed by Apache MXNet 1.9.1."""
from __future__ import annotations

import math

import pytest

from mxcore import lr_scheduler as L


def _warmup(n, begin, base, steps, mode="linear"):
    return begin + (base - begin) * n / steps if mode == "linear" else begin


def _run(sched, steps):
    return [sched(n) for n in steps]  # in increasing order: schedulers keep state


def test_factor_formula_with_warmup():
    base, begin, warm, step, factor, stop = 0.4, 0.1, 2, 3, 0.5, 0.02
    s = L.FactorScheduler(step=step, factor=factor, stop_factor_lr=stop, base_lr=base,
                          warmup_steps=warm, warmup_begin_lr=begin)
    for n, lr in zip(range(30), _run(s, range(30))):
        if n < warm:
            expect = _warmup(n, begin, base, warm)
        else:  # decays after updates step, 2*step, ... (counted from 0, not from warmup)
            expect = max(base * factor ** max(0, (n - 1) // step), stop)
        assert lr == pytest.approx(expect, rel=1e-12), n


def test_factor_resume_jumps_several_steps():
    s = L.FactorScheduler(step=10, factor=0.1, base_lr=1.0)
    assert s(35) == pytest.approx(1e-3)   # three decays at once
    assert s(36) == pytest.approx(1e-3)


def test_multifactor_formula_with_constant_warmup():
    base, begin, warm, steps, factor = 1.0, 0.4, 3, [4, 7], 0.1
    s = L.MultiFactorScheduler(step=steps, factor=factor, base_lr=base, warmup_steps=warm,
                               warmup_begin_lr=begin, warmup_mode="constant")
    for n, lr in zip(range(15), _run(s, range(15))):
        if n < warm:
            expect = begin
        else:
            expect = base * factor ** sum(n > k for k in steps)
        assert lr == pytest.approx(expect, rel=1e-12), n


@pytest.mark.parametrize("pwr", [1, 2, 3])
def test_poly_formula_with_warmup(pwr):
    base, final, begin, warm, max_update = 0.5, 0.1, 0.05, 4, 10
    s = L.PolyScheduler(max_update=max_update, base_lr=base, pwr=pwr, final_lr=final,
                        warmup_steps=warm, warmup_begin_lr=begin)
    for n, lr in zip(range(16), _run(s, range(16))):
        if n < warm:
            expect = _warmup(n, begin, base, warm)
        else:
            frac = min(n - warm, max_update - warm) / (max_update - warm)
            expect = final + (base - final) * (1 - frac) ** pwr
        assert lr == pytest.approx(expect, rel=1e-12), n


def test_cosine_formula_with_warmup():
    base, final, begin, warm, max_update = 0.5, 0.1, 0.05, 4, 10
    s = L.CosineScheduler(max_update=max_update, base_lr=base, final_lr=final,
                          warmup_steps=warm, warmup_begin_lr=begin)
    for n, lr in zip(range(16), _run(s, range(16))):
        if n < warm:
            expect = _warmup(n, begin, base, warm)
        else:
            frac = min(n - warm, max_update - warm) / (max_update - warm)
            expect = final + (base - final) * (1 + math.cos(math.pi * frac)) / 2
        assert lr == pytest.approx(expect, rel=1e-12), n


def test_no_warmup_starts_at_base():
    assert L.CosineScheduler(100, base_lr=0.3)(0) == pytest.approx(0.3)
    assert L.PolyScheduler(100, base_lr=0.3)(0) == pytest.approx(0.3)
    assert L.FactorScheduler(5, 0.5, base_lr=0.3)(0) == 0.3
    assert L.CosineScheduler(100, base_lr=0.3)(100) == pytest.approx(0.0)


# printed by Apache MXNet 1.9.1 (mxnet.lr_scheduler) for n = 0..13
MXNET_191 = {
    "factor": (lambda: L.FactorScheduler(step=3, factor=0.5, stop_factor_lr=0.02, base_lr=0.4,
                                         warmup_steps=2, warmup_begin_lr=0.1),
               [0.1, 0.25, 0.4, 0.4, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025]),
    "multifactor": (lambda: L.MultiFactorScheduler(step=[4, 7], factor=0.1, base_lr=1.0,
                                                   warmup_steps=3, warmup_begin_lr=0.4,
                                                   warmup_mode="constant"),
                    [0.4, 0.4, 0.4, 1.0, 1.0, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.01, 0.01,
                     0.01]),
    "poly": (lambda: L.PolyScheduler(max_update=10, base_lr=0.5, pwr=2, final_lr=0.1,
                                     warmup_steps=4, warmup_begin_lr=0.05),
             [0.05, 0.1625, 0.275, 0.3875, 0.5, 0.377777777778, 0.277777777778, 0.2,
              0.144444444444, 0.111111111111, 0.1, 0.1, 0.1, 0.1]),
    "cosine": (lambda: L.CosineScheduler(max_update=10, base_lr=0.5, final_lr=0.1,
                                         warmup_steps=4, warmup_begin_lr=0.05),
               [0.05, 0.1625, 0.275, 0.3875, 0.5, 0.473205080757, 0.4, 0.3, 0.2,
                0.126794919243, 0.1, 0.1, 0.1, 0.1]),
}


@pytest.mark.parametrize("name", sorted(MXNET_191))
def test_matches_mxnet_191(name):
    make, values = MXNET_191[name]
    got = _run(make(), range(len(values)))
    assert got == pytest.approx(values, abs=1e-11)


@pytest.mark.parametrize("make", [
    lambda: L.LRScheduler(base_lr=0.1, warmup_begin_lr=0.2, warmup_steps=2),
    lambda: L.LRScheduler(warmup_steps=-1),
    lambda: L.LRScheduler(warmup_mode="cosine"),
    lambda: L.FactorScheduler(step=0),
    lambda: L.FactorScheduler(step=2, factor=1.5),
    lambda: L.MultiFactorScheduler(step=[3, 3]),
    lambda: L.MultiFactorScheduler(step=[0, 3]),
    lambda: L.MultiFactorScheduler(step=[2], factor=2.0),
    lambda: L.PolyScheduler(max_update=0),
    lambda: L.CosineScheduler(max_update=0),
])
def test_invalid_arguments(make):
    with pytest.raises(ValueError):
        make()


def test_type_errors():
    with pytest.raises(TypeError):
        L.PolyScheduler(max_update=10.0)
    with pytest.raises(TypeError):
        L.LRScheduler(warmup_steps=1.5)
    with pytest.raises(NotImplementedError):
        L.LRScheduler()(0)
