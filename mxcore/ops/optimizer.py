"""Fused optimizer updates (MXNet 1.x names and attributes).

Each op writes the weight and its state arrays in place (``mutates``), returns
the weight and has no gradient rule.  Gradient preprocessing follows MXNet 1.9
kernel by kernel:

* ``sgd_update``, ``sgd_mom_update``, ``nag_mom_update``, ``adamw_update``,
  ``adagrad_update``, ``adadelta_update``:
  ``g = clip(rescale_grad * grad, clip_gradient)``, weight decay applied
  after clipping;
* ``adam_update``, ``rmsprop_update``, ``rmspropalex_update``, ``ftml_update``:
  ``g = clip(rescale_grad * grad + wd * weight, clip_gradient)`` (weight decay
  inside the clip, as MXNet does);
* ``signum_update``: ``clip(rescale_grad * grad) + wd * weight``;
  ``signsgd_update`` steps by the sign of the raw gradient (rescaling and
  clipping cannot change it);
* ``ftrl_update``, ``lamb_update_phase1`` and the multi-tensor LAMB ops:
  ``clip(rescale_grad * grad)``, weight decay applied by the rule itself.

LAMB runs in two phases as in MXNet: ``lamb_update_phase1`` updates the moments
and returns the step direction ``g``; ``lamb_update_phase2`` takes the norms of
the weight and of ``g`` (1-element arrays, read on the device) and applies the
trust ratio.  ``mp_*`` forms take a float32 master copy of a 16-bit weight.

``clip_gradient < 0`` turns clipping off; ``clip_gradient = 0`` clips to zero
(MXNet tests ``clip_gradient >= 0``).  Attributes are computed in the weight's
dtype.  ``grad`` is never written.

The Python functions take MXNet's ``out=``: ``None`` or the weight itself
updates the weight in place; another array receives the new weight while
``weight`` keeps its value (the states are updated either way).
"""
from __future__ import annotations

import functools
import sys
from typing import Sequence, Tuple

import numpy as np

from hal import is_float
from mxcore.base import MXCoreError, OperatorError
from mxcore.dispatch import invoke, invoke_in_place
from mxcore.array import NDArray
from mxcore.op import REQUIRED, Op

OPS: list = []

_PREP = {"wd": 0.0, "rescale_grad": 1.0, "clip_gradient": -1.0}


def _infer(shapes, dtypes, attrs):
    if any(s != shapes[0] for s in shapes[1:]):
        raise MXCoreError(f"weight, gradient and states must have one shape, got "
                          f"{', '.join(str(s) for s in shapes)}")
    if any(d != dtypes[0] for d in dtypes[1:]):
        raise MXCoreError(f"weight, gradient and states must have one dtype, got "
                          f"{', '.join(str(d) for d in dtypes)}")
    return [shapes[0]], [dtypes[0]]


#: hyper-parameters that schedules and bias corrections change every step
_VOLATILE = ("lr", "lrs", "wd", "wds", "eta", "etas", "rescale_grad", "clip_gradient",
             "clip_grad", "t", "learning_rates", "step_count")


def _new(name: str, states: Sequence[str], attrs: dict, doc: str) -> Op:
    nin = 2 + len(states)
    op = Op(name, nin, attrs=attrs, mutates=(0,) + tuple(range(2, nin)), doc=doc,
            volatile_attrs=_VOLATILE)
    op.def_infer(_infer)
    OPS.append(op)
    return op


SGD_UPDATE = _new("sgd_update", (), {"lr": REQUIRED, **_PREP},
                  "weight = (1 - lr*wd)*weight - lr*clip(rescale_grad*grad)")
SGD_MOM_UPDATE = _new("sgd_mom_update", ("mom",), {"lr": REQUIRED, "momentum": 0.0, **_PREP},
                      "mom = momentum*mom - lr*(clip(rescale_grad*grad) + wd*weight); "
                      "weight += mom")
NAG_MOM_UPDATE = _new("nag_mom_update", ("mom",), {"lr": REQUIRED, "momentum": 0.0, **_PREP},
                      "g = clip(rescale_grad*grad) + wd*weight; mom = momentum*mom - lr*g; "
                      "weight += momentum*mom - lr*g")
ADAM_UPDATE = _new("adam_update", ("mean", "var"),
                   {"lr": REQUIRED, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, **_PREP},
                   "g = clip(rescale_grad*grad + wd*weight); mean = beta1*mean + (1-beta1)*g; "
                   "var = beta2*var + (1-beta2)*g^2; weight -= lr*mean/(sqrt(var) + epsilon) "
                   "(no bias correction: the Adam optimizer folds it into lr)")
ADAMW_UPDATE = _new("adamw_update", ("mean", "var"),
                    {"lr": REQUIRED, "eta": 1.0, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8,
                     **_PREP},
                    "MXNet contrib _adamw_update: g = clip(rescale_grad*grad); mean, var as "
                    "adam_update; weight -= eta*(lr*mean/(sqrt(var) + epsilon) + wd*weight)")
RMSPROP_UPDATE = _new("rmsprop_update", ("n",),
                      {"lr": REQUIRED, "gamma1": 0.95, "epsilon": 1e-8, **_PREP,
                       "clip_weights": -1.0},
                      "g = clip(rescale_grad*grad + wd*weight); n = (1-gamma1)*g^2 + gamma1*n; "
                      "weight = clip(weight - lr*g/sqrt(n + epsilon), clip_weights)")
RMSPROPALEX_UPDATE = _new("rmspropalex_update", ("n", "g", "delta"),
                          {"lr": REQUIRED, "gamma1": 0.95, "gamma2": 0.9, "epsilon": 1e-8,
                           **_PREP, "clip_weights": -1.0},
                          "centered RMSProp (Graves 2013): n = (1-gamma1)*g^2 + gamma1*n; "
                          "m = (1-gamma1)*g + gamma1*m; delta = gamma2*delta - "
                          "lr*g/sqrt(n - m^2 + epsilon); weight = clip(weight + delta, "
                          "clip_weights)")
ADAGRAD_UPDATE = _new("adagrad_update", ("history",),
                      {"lr": REQUIRED, "epsilon": 1e-7, **_PREP},
                      "g = clip(rescale_grad*grad); history += g^2; "
                      "weight -= lr*(g/sqrt(history + epsilon) + wd*weight)")
ADADELTA_UPDATE = _new("adadelta_update", ("acc_g", "acc_delta"),
                       {"lr": 1.0, "rho": 0.9, "epsilon": 1e-5, **_PREP},
                       "g = clip(rescale_grad*grad); acc_g = rho*acc_g + (1-rho)*g^2; "
                       "d = sqrt(acc_delta + epsilon)/sqrt(acc_g + epsilon)*g; "
                       "acc_delta = rho*acc_delta + (1-rho)*d^2; weight -= lr*(d + wd*weight)")

SIGNSGD_UPDATE = _new("signsgd_update", (), {"lr": REQUIRED, **_PREP},
                      "weight = (1 - lr*wd)*weight - lr*sign(grad) (rescale_grad and "
                      "clip_gradient cannot change the sign)")
SIGNUM_UPDATE = _new("signum_update", ("mom",),
                     {"lr": REQUIRED, "momentum": 0.0, **_PREP, "wd_lh": 0.0},
                     "mom = momentum*mom - (1-momentum)*(clip(rescale_grad*grad) + wd*weight); "
                     "weight = (1 - lr*wd_lh)*weight + lr*sign(mom)")
FTML_UPDATE = _new("ftml_update", ("d", "v", "z"),
                   {"lr": REQUIRED, "beta1": 0.6, "beta2": 0.999, "epsilon": 1e-8,
                    "t": REQUIRED, "wd": 0.0, "rescale_grad": 1.0, "clip_grad": -1.0},
                   "g = clip(rescale_grad*grad + wd*weight, clip_grad); v = beta2*v + "
                   "(1-beta2)*g^2; d_t = (1-beta1^t)/lr*(sqrt(v/(1-beta2^t)) + epsilon); "
                   "z = beta1*z + (1-beta1)*g - (d_t - beta1*d)*weight; d = d_t; "
                   "weight = -z/d_t")
FTRL_UPDATE = _new("ftrl_update", ("z", "n"),
                   {"lr": REQUIRED, "lamda1": 0.01, "beta": 1.0, **_PREP},
                   "g = clip(rescale_grad*grad); z += g - (sqrt(n + g^2) - sqrt(n))*weight/lr; "
                   "n += g^2; weight = (sign(z)*lamda1 - z)/((beta + sqrt(n))/lr + wd) * "
                   "(|z| > lamda1)")

# LAMB ----------------------------------------------------------------------------------
_LAMB_HP = {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-6, "t": REQUIRED,
            "bias_correction": True, "wd": REQUIRED, "rescale_grad": 1.0,
            "clip_gradient": -1.0}
_BOUNDS = {"lower_bound": -1.0, "upper_bound": -1.0}


def _one_element(shape) -> bool:
    return int(np.prod(shape)) == 1


def _lamb1_infer(shapes, dtypes, attrs):
    """weight, grad, mean, var -> g (the weight's shape and dtype)."""
    return _infer(shapes, dtypes, attrs)


def _mp_lamb1_infer(shapes, dtypes, attrs):
    """weight, grad (one 16-bit dtype), mean, var, weight32 (float32) -> g (float32)."""
    _infer(shapes[:2], dtypes[:2], attrs)
    _master_rule(shapes[0], shapes[2:], dtypes[2:], "mean, var and weight32")
    return [shapes[0]], [np.dtype(np.float32)]


def _master_rule(shape, shapes, dtypes, what: str) -> None:
    if any(s != shape for s in shapes):
        raise MXCoreError(f"{what} must have the weight's shape {shape}, got "
                          f"{', '.join(str(s) for s in shapes)}")
    if any(d != np.float32 for d in dtypes):
        raise MXCoreError(f"{what} must be float32, got {', '.join(str(d) for d in dtypes)}")


def _norms_rule(shapes, dtypes, dtype) -> None:
    """r1 and r2: one-element arrays of ``dtype``."""
    if not all(_one_element(s) for s in shapes):
        raise MXCoreError(f"r1 and r2 must hold one element each, got shapes "
                          f"{', '.join(str(s) for s in shapes)}")
    if any(d != dtype for d in dtypes):
        raise MXCoreError(f"r1 and r2 must be {dtype}, got {', '.join(str(d) for d in dtypes)}")


def _lamb2_infer(shapes, dtypes, attrs):
    """weight, g, r1, r2 -> weight."""
    _infer(shapes[:2], dtypes[:2], attrs)
    _norms_rule(shapes[2:], dtypes[2:], dtypes[0])
    return [shapes[0]], [dtypes[0]]


def _mp_lamb2_infer(shapes, dtypes, attrs):
    """weight (16-bit), g, r1, r2, weight32 (float32) -> weight."""
    _master_rule(shapes[0], (shapes[1], shapes[4]), (dtypes[1], dtypes[4]), "g and weight32")
    _norms_rule(shapes[2:4], dtypes[2:4], np.dtype(np.float32))
    return [shapes[0]], [dtypes[0]]


def _lamb_op(name: str, nin: int, attrs: dict, mutates, infer, doc: str) -> Op:
    op = Op(name, nin, attrs=attrs, mutates=mutates, doc=doc, volatile_attrs=_VOLATILE)
    op.def_infer(infer)
    OPS.append(op)
    return op


LAMB_UPDATE_PHASE1 = _lamb_op(
    "lamb_update_phase1", 4, dict(_LAMB_HP), (2, 3), _lamb1_infer,
    "g = clip(rescale_grad*grad); mean = beta1*mean + (1-beta1)*g; var = beta2*var + "
    "(1-beta2)*g^2; returns mean_hat/(sqrt(var_hat) + epsilon) + wd*weight (hats: bias "
    "corrected at step t when bias_correction)")
LAMB_UPDATE_PHASE2 = _lamb_op(
    "lamb_update_phase2", 4, {"lr": REQUIRED, **_BOUNDS}, (0,), _lamb2_infer,
    "r1 = clip(r1, lower_bound, upper_bound) (a bound < 0 is off); weight -= lr*r1/r2*g "
    "(lr*g when r1 or r2 is 0)")
MP_LAMB_UPDATE_PHASE1 = _lamb_op(
    "mp_lamb_update_phase1", 5, dict(_LAMB_HP), (2, 3), _mp_lamb1_infer,
    "lamb_update_phase1 of a 16-bit weight through its float32 master copy weight32 "
    "(g is float32; weight decay reads weight32)")
MP_LAMB_UPDATE_PHASE2 = _lamb_op(
    "mp_lamb_update_phase2", 5, {"lr": REQUIRED, **_BOUNDS}, (0, 4), _mp_lamb2_infer,
    "lamb_update_phase2 on the float32 master copy weight32, then weight = weight32")

# multi-tensor updates: one call updates many weights (inputs are interleaved per
# weight: w0, g0[, states0...], w1, g1, ...; the list attributes -- lrs, wds, and
# etas for AdamW -- hold one value per weight)
@functools.lru_cache(maxsize=256)
def _mutated(per: int, num_weights: int) -> Tuple[int, ...]:
    """Indices a multi-weight update writes: every weight and state, not the gradients
    (cached: the engine is told them on every call)."""
    return tuple(i for i in range(per * num_weights) if i % per != 1)


def _multi(name: str, per: int, attrs: dict, doc: str, lists=("lrs", "wds")) -> Op:
    op = Op(name, -1, attrs={**{k: REQUIRED for k in lists}, "num_weights": REQUIRED,
                             **attrs, **{k: v for k, v in _PREP.items() if k != "wd"}},
            mutates=lambda a: _mutated(per, a["num_weights"]), doc=doc,
            volatile_attrs=_VOLATILE)

    @op.def_infer
    def _multi_infer(shapes, dtypes, a):
        groups = [_infer(shapes[i:i + per], dtypes[i:i + per], a)
                  for i in range(0, len(shapes), per)]
        return [s for g in groups for s in g[0]], [d for g in groups for d in g[1]]
    op.nout = -1
    OPS.append(op)
    return op


_ADAM_HP = {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}
MULTI_SGD_UPDATE = _multi("multi_sgd_update", 2, {},
                          "sgd_update on num_weights (weight, grad) pairs in one call")
MULTI_SGD_MOM_UPDATE = _multi("multi_sgd_mom_update", 3, {"momentum": 0.0},
                              "sgd_mom_update on num_weights (weight, grad, mom) triples")
MULTI_ADAM_UPDATE = _multi("multi_adam_update", 4, dict(_ADAM_HP),
                           "adam_update on num_weights (weight, grad, mean, var) groups "
                           "(lrs carry each weight's bias correction)")
MULTI_ADAMW_UPDATE = _multi("multi_adamw_update", 4, dict(_ADAM_HP),
                            "adamw_update on num_weights (weight, grad, mean, var) groups, "
                            "one lr, wd and eta per weight", lists=("lrs", "wds", "etas"))


def _multi_lamb_op(name: str, per: int, infer_one, doc: str) -> Op:
    """MXNet's contrib ``_multi_lamb_update`` family: ``per`` arrays per tensor, one
    learning rate, weight decay and step count per tensor."""
    attrs = {"learning_rates": REQUIRED, "wds": REQUIRED, "step_count": REQUIRED,
             "num_tensors": 1, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-6,
             "rescale_grad": 1.0, **_BOUNDS, "clip_gradient": -1.0, "bias_correction": True}
    op = Op(name, -1, attrs=attrs, mutates=lambda a: _mutated(per, a["num_tensors"]),
            doc=doc, volatile_attrs=_VOLATILE)

    @op.def_infer
    def _multi_lamb_infer(shapes, dtypes, a):
        if len(shapes) != per * a["num_tensors"]:
            raise MXCoreError(f"expected {per} arrays per tensor for "
                              f"num_tensors={a['num_tensors']}, got {len(shapes)} arrays")
        out_s, out_d = [], []
        for i in range(0, len(shapes), per):
            infer_one(shapes[i:i + per], dtypes[i:i + per], a)
            out_s.append(shapes[i])
            out_d.append(dtypes[i])
        return out_s, out_d
    op.nout = -1
    OPS.append(op)
    return op


MULTI_LAMB_UPDATE = _multi_lamb_op(
    "multi_lamb_update", 4, _lamb1_infer,
    "LAMB (lamb_update_phase1, the norms, lamb_update_phase2) on num_tensors (weight, "
    "grad, mean, var) groups in one call")
MULTI_MP_LAMB_UPDATE = _multi_lamb_op(
    "multi_mp_lamb_update", 5, _mp_lamb1_infer,
    "mixed-precision LAMB on num_tensors (weight, grad, mean, var, weight32) groups; "
    "the weight norm is the float32 master copy's")

def multi_update_attrs(lists: dict, attrs: dict, num_weights: int) -> dict:
    """The attributes a multi-weight update op takes: each list as a tuple of floats
    (one per weight), each scalar a float, ``num_weights`` an int."""
    out = {k: tuple([float(x) for x in v]) for k, v in lists.items()}
    for k, v in attrs.items():
        out[k] = float(v)
    out["num_weights"] = int(num_weights)
    return out


def invoke_multi_update(op: Op, per: int, data, attrs: dict) -> None:
    """Run a multi-weight update (``data``: ``per`` arrays per weight, weight first;
    ``attrs`` from ``multi_update_attrs``) after checking the counts and each group."""
    n = attrs["num_weights"]
    lists = {k: v for k, v in attrs.items() if isinstance(v, tuple)}
    if len(data) != per * n or any(len(v) != n for v in lists.values()):
        counts = ", ".join(f"{len(v)} {k}" for k, v in lists.items())
        raise OperatorError(op.name, f"expected {per} arrays per weight and one value of "
                            f"each of {', '.join(lists)} per weight for "
                            f"num_weights={n}; got {len(data)} arrays, {counts}")
    _check_groups(op, data, per)
    invoke_in_place(op, data, attrs)


def _multi_update(op: Op, per: int, data, lists: dict, attrs: dict, num_weights: int):
    invoke_multi_update(op, per, data, multi_update_attrs(lists, attrs, num_weights))
    return list(data[0::per])


def multi_sgd_update(*data, lrs, wds, rescale_grad=1.0, clip_gradient=-1.0, num_weights=1,
                     out=None):
    """Plain SGD on several weights at once: ``data`` is w0, g0, w1, g1, ...
    (updated in place; returns the weights)."""
    return _multi_update(MULTI_SGD_UPDATE, 2, data, dict(lrs=lrs, wds=wds), dict(
        rescale_grad=rescale_grad, clip_gradient=clip_gradient), num_weights)


def multi_sgd_mom_update(*data, lrs, wds, momentum=0.0, rescale_grad=1.0, clip_gradient=-1.0,
                         num_weights=1, out=None):
    """SGD with momentum on several weights at once: ``data`` is w0, g0, m0,
    w1, g1, m1, ... (updated in place; returns the weights)."""
    return _multi_update(MULTI_SGD_MOM_UPDATE, 3, data, dict(lrs=lrs, wds=wds), dict(
        momentum=momentum, rescale_grad=rescale_grad, clip_gradient=clip_gradient), num_weights)


def multi_adam_update(*data, lrs, wds, beta1=0.9, beta2=0.999, epsilon=1e-8, rescale_grad=1.0,
                      clip_gradient=-1.0, num_weights=1, out=None):
    """``adam_update`` on several weights at once: ``data`` is w0, g0, mean0,
    var0, w1, ... (updated in place; returns the weights)."""
    return _multi_update(MULTI_ADAM_UPDATE, 4, data, dict(lrs=lrs, wds=wds), dict(
        beta1=beta1, beta2=beta2, epsilon=epsilon, rescale_grad=rescale_grad,
        clip_gradient=clip_gradient), num_weights)


def multi_adamw_update(*data, lrs, wds, etas, beta1=0.9, beta2=0.999, epsilon=1e-8,
                       rescale_grad=1.0, clip_gradient=-1.0, num_weights=1, out=None):
    """``adamw_update`` on several weights at once: ``data`` is w0, g0, mean0,
    var0, w1, ... with one ``lr``, ``wd`` and ``eta`` per weight (updated in
    place; returns the weights)."""
    return _multi_update(MULTI_ADAMW_UPDATE, 4, data, dict(lrs=lrs, wds=wds, etas=etas), dict(
        beta1=beta1, beta2=beta2, epsilon=epsilon, rescale_grad=rescale_grad,
        clip_gradient=clip_gradient), num_weights)


def _may_share_memory(a, b) -> bool:
    """Whether two device arrays may overlap (numpy, or the array's own module:
    CuPy has ``may_share_memory`` too)."""
    if isinstance(a, np.ndarray):
        if type(a) is np.ndarray and type(b) is np.ndarray and a.base is None \
                and b.base is None:
            return a is b  # two arrays that own their buffers overlap only if they are one
        if isinstance(b, np.ndarray):
            return np.may_share_memory(a, b)
    from mxcore.threaded_engine import Pending
    if type(a) is Pending or type(b) is Pending:
        # a queued kernel's output is fresh memory unless its operator returns views of
        # its inputs or writes them in place (the engine holds kernels to that): two
        # fresh ones, or a fresh one and an older array, are apart; with a view or an
        # in-place output both are waited for and compared
        if a is b:
            return True
        if not any(type(p) is Pending and (p._task.op.views or p._task.mutated)
                   for p in (a, b)):
            return False
        return _may_share_memory(a.value() if type(a) is Pending else a,
                                 b.value() if type(b) is Pending else b)
    if isinstance(a, np.ndarray):
        return False
    module = sys.modules.get(type(a).__module__.split(".")[0])
    check = getattr(module, "may_share_memory", None)
    return bool(check(a, b)) if check is not None else a is b


def _check_groups(op: Op, data, per: int) -> None:
    """``_check`` of each group of ``per`` arrays (weight first), the fast path inline: a
    step of a large model checks hundreds of groups."""
    try:
        for i in range(0, len(data), per):
            w = data[i]
            wd = w._data
            dt, shape = wd.dtype, wd.shape
            if not (dt.kind == "f" or is_float(dt)) or type(w._ag) is tuple:
                break
            own = type(wd) is np.ndarray and wd.base is None
            for j in range(i + 1, i + per):
                xd = data[j]._data
                if xd.shape != shape or xd.dtype != dt or xd is wd or not (
                        own and type(xd) is np.ndarray and xd.base is None) and (
                        _may_share_memory(xd, wd)):
                    break
            else:
                continue
            break
        else:
            return
    except AttributeError:
        pass
    for i in range(0, len(data), per):
        _check(op, data[i:i + per])


def _check(op: Op, arrays) -> None:
    # fast path: one shape, one float dtype, no aliasing, weight not in a graph (two
    # distinct numpy arrays that own their buffers cannot overlap: no call needed)
    try:
        w = arrays[0]
        wd = w._data
        dt, shape = wd.dtype, wd.shape
        ok = (dt.kind == "f" or is_float(dt)) and type(w._ag) is not tuple
        own = type(wd) is np.ndarray and wd.base is None
        for x in arrays[1:]:
            xd = x._data
            if xd.shape != shape or xd.dtype != dt or xd is wd or not (
                    own and type(xd) is np.ndarray and xd.base is None) and (
                    _may_share_memory(xd, wd)):
                ok = False
                break
        if ok:
            return
    except AttributeError:
        pass
    _check_slow(op, arrays)


def _check_slow(op: Op, arrays) -> None:
    """Find what is wrong and say it."""
    for x in arrays:
        if not isinstance(x, NDArray):
            raise OperatorError(op.name, f"expected NDArray inputs, got "
                                f"{[type(a).__name__ for a in arrays]}")
    w = arrays[0]
    shapes = [x.shape for x in arrays]
    dtypes = [x.dtype for x in arrays]
    if not is_float(w.dtype):
        raise OperatorError(op.name, f"the weight must be a float array, got {w.dtype}",
                            shapes, dtypes, w.context)
    try:
        _infer(shapes, dtypes, {})
    except MXCoreError as exc:
        raise OperatorError(op.name, str(exc), shapes, dtypes, w.context) from None
    if type(w._ag) is tuple:
        raise OperatorError(op.name, "cannot update an array recorded by autograd in place "
                            "(it is an intermediate result of the graph)", shapes, dtypes,
                            w.context)
    for x in arrays[1:]:
        xd, wd = x._data, w._data
        if xd is wd or (isinstance(xd, np.ndarray) and isinstance(wd, np.ndarray)
                        and np.may_share_memory(xd, wd) and np.shares_memory(xd, wd)) or (
                        not isinstance(xd, np.ndarray) and _may_share_memory(xd, wd)):
            raise OperatorError(op.name, "the gradient and the states must not share memory "
                                "with the weight", shapes, dtypes, w.context)


def _update(op: Op, weight: NDArray, grad: NDArray, states, attrs: dict, out) -> NDArray:
    arrays = (weight, grad, *states)
    _check(op, arrays)
    attrs = {k: float(v) for k, v in attrs.items()}
    if out is None or out is weight:
        invoke(op, arrays, attrs)
        return weight
    if not isinstance(out, NDArray) or out.shape != weight.shape or out.dtype != weight.dtype:
        raise OperatorError(op.name, f"out must be an NDArray of shape {weight.shape} and "
                            f"dtype {weight.dtype}", [weight.shape], [weight.dtype],
                            weight.context)
    # MXNet writes the new weight into `out` and leaves `weight` alone.
    out[...] = weight
    invoke(op, (out, grad, *states), attrs)
    return out


def sgd_update(weight, grad, lr, wd=0.0, rescale_grad=1.0, clip_gradient=-1.0,
               lazy_update=True, out=None) -> NDArray:
    """Plain SGD step: ``weight = (1 - lr*wd)*weight - lr*clip(rescale_grad*grad)``.

    ``lazy_update`` is accepted for MXNet compatibility (dense arrays only)."""
    return _update(SGD_UPDATE, weight, grad, (), dict(
        lr=lr, wd=wd, rescale_grad=rescale_grad, clip_gradient=clip_gradient), out)


def sgd_mom_update(weight, grad, mom, lr, momentum=0.0, wd=0.0, rescale_grad=1.0,
                   clip_gradient=-1.0, lazy_update=True, out=None) -> NDArray:
    """SGD with momentum: ``mom = momentum*mom - lr*(clip(rescale_grad*grad) +
    wd*weight); weight += mom``."""
    return _update(SGD_MOM_UPDATE, weight, grad, (mom,), dict(
        lr=lr, momentum=momentum, wd=wd, rescale_grad=rescale_grad,
        clip_gradient=clip_gradient), out)


def nag_mom_update(weight, grad, mom, lr, momentum=0.0, wd=0.0, rescale_grad=1.0,
                   clip_gradient=-1.0, out=None) -> NDArray:
    """Nesterov momentum (MXNet 1.6+ form, the momentum holds ``lr``):
    ``g = clip(rescale_grad*grad) + wd*weight; mom = momentum*mom - lr*g;
    weight += momentum*mom - lr*g``.

    MXNet 1.9's kernel reads the weight for the momentum's ``wd`` term after it
    has written it when ``out`` is the weight; this op uses the old weight."""
    return _update(NAG_MOM_UPDATE, weight, grad, (mom,), dict(
        lr=lr, momentum=momentum, wd=wd, rescale_grad=rescale_grad,
        clip_gradient=clip_gradient), out)


def adam_update(weight, grad, mean, var, lr, beta1=0.9, beta2=0.999, epsilon=1e-8, wd=0.0,
                rescale_grad=1.0, clip_gradient=-1.0, lazy_update=True, out=None) -> NDArray:
    """Adam step without bias correction (``mx.optimizer.Adam`` folds it into
    ``lr``); weight decay is added to the gradient before clipping (MXNet)."""
    return _update(ADAM_UPDATE, weight, grad, (mean, var), dict(
        lr=lr, beta1=beta1, beta2=beta2, epsilon=epsilon, wd=wd, rescale_grad=rescale_grad,
        clip_gradient=clip_gradient), out)


def adamw_update(weight, grad, mean, var, lr, eta=1.0, beta1=0.9, beta2=0.999, epsilon=1e-8,
                 wd=0.0, rescale_grad=1.0, clip_gradient=-1.0, out=None) -> NDArray:
    """AdamW with decoupled weight decay (MXNet's contrib ``adamw_update``):
    ``weight -= eta*(lr*mean/(sqrt(var) + epsilon) + wd*weight)``, no bias
    correction.  ``rescale_grad`` is a number here (MXNet's takes an array and
    skips the step when it is not finite)."""
    return _update(ADAMW_UPDATE, weight, grad, (mean, var), dict(
        lr=lr, eta=eta, beta1=beta1, beta2=beta2, epsilon=epsilon, wd=wd,
        rescale_grad=rescale_grad, clip_gradient=clip_gradient), out)


def rmsprop_update(weight, grad, n, lr, gamma1=0.95, epsilon=1e-8, wd=0.0, rescale_grad=1.0,
                   clip_gradient=-1.0, clip_weights=-1.0, out=None) -> NDArray:
    """RMSProp (Tieleman & Hinton): ``weight -= lr*g/sqrt(n + epsilon)``."""
    return _update(RMSPROP_UPDATE, weight, grad, (n,), dict(
        lr=lr, gamma1=gamma1, epsilon=epsilon, wd=wd, rescale_grad=rescale_grad,
        clip_gradient=clip_gradient, clip_weights=clip_weights), out)


def rmspropalex_update(weight, grad, n, g, delta, lr, gamma1=0.95, gamma2=0.9, epsilon=1e-8,
                       wd=0.0, rescale_grad=1.0, clip_gradient=-1.0, clip_weights=-1.0,
                       out=None) -> NDArray:
    """Centered RMSProp (Graves 2013) with momentum ``gamma2``."""
    return _update(RMSPROPALEX_UPDATE, weight, grad, (n, g, delta), dict(
        lr=lr, gamma1=gamma1, gamma2=gamma2, epsilon=epsilon, wd=wd, rescale_grad=rescale_grad,
        clip_gradient=clip_gradient, clip_weights=clip_weights), out)


def adagrad_update(weight, grad, history, lr, epsilon=1e-7, wd=0.0, rescale_grad=1.0,
                   clip_gradient=-1.0, out=None) -> NDArray:
    """AdaGrad as ``mx.optimizer.AdaGrad`` computes it on dense arrays:
    ``history += g^2; weight -= lr*(g/sqrt(history + epsilon) + wd*weight)``."""
    return _update(ADAGRAD_UPDATE, weight, grad, (history,), dict(
        lr=lr, epsilon=epsilon, wd=wd, rescale_grad=rescale_grad,
        clip_gradient=clip_gradient), out)


def adadelta_update(weight, grad, acc_g, acc_delta, rho=0.9, epsilon=1e-5, wd=0.0,
                    rescale_grad=1.0, clip_gradient=-1.0, lr=1.0, out=None) -> NDArray:
    """AdaDelta as ``mx.optimizer.AdaDelta`` computes it (MXNet 1.9 uses no
    learning rate: ``lr`` defaults to 1)."""
    return _update(ADADELTA_UPDATE, weight, grad, (acc_g, acc_delta), dict(
        lr=lr, rho=rho, epsilon=epsilon, wd=wd, rescale_grad=rescale_grad,
        clip_gradient=clip_gradient), out)


def signsgd_update(weight, grad, lr, wd=0.0, rescale_grad=1.0, clip_gradient=-1.0,
                   out=None) -> NDArray:
    """SignSGD: ``weight = (1 - lr*wd)*weight - lr*sign(grad)``.  ``rescale_grad``
    and ``clip_gradient`` are accepted as MXNet's are: they cannot change the
    sign, so they change nothing."""
    return _update(SIGNSGD_UPDATE, weight, grad, (), dict(
        lr=lr, wd=wd, rescale_grad=rescale_grad, clip_gradient=clip_gradient), out)


def signum_update(weight, grad, mom, lr, momentum=0.0, wd=0.0, rescale_grad=1.0,
                  clip_gradient=-1.0, wd_lh=0.0, out=None) -> NDArray:
    """Signum (sign of momentum): ``mom = momentum*mom - (1-momentum)*(clip(
    rescale_grad*grad) + wd*weight); weight = (1 - lr*wd_lh)*weight +
    lr*sign(mom)`` (``wd_lh``: decoupled weight decay)."""
    return _update(SIGNUM_UPDATE, weight, grad, (mom,), dict(
        lr=lr, momentum=momentum, wd=wd, rescale_grad=rescale_grad,
        clip_gradient=clip_gradient, wd_lh=wd_lh), out)


def ftml_update(weight, grad, d, v, z, lr, beta1=0.6, beta2=0.999, epsilon=1e-8, t=None,
                wd=0.0, rescale_grad=1.0, clip_grad=-1.0, out=None) -> NDArray:
    """FTML (Follow the Moving Leader) step ``t`` (the update count, from 1;
    required): see ``mx.optimizer.FTML``.  The clipping threshold is called
    ``clip_grad`` here, as in MXNet."""
    _required(FTML_UPDATE, weight, t=t)
    return _update(FTML_UPDATE, weight, grad, (d, v, z), dict(
        lr=lr, beta1=beta1, beta2=beta2, epsilon=epsilon, t=t, wd=wd,
        rescale_grad=rescale_grad, clip_grad=clip_grad), out)


def ftrl_update(weight, grad, z, n, lr, lamda1=0.01, beta=1.0, wd=0.0, rescale_grad=1.0,
                clip_gradient=-1.0, out=None) -> NDArray:
    """FTRL-Proximal (McMahan et al., "Ad Click Prediction"): see
    ``mx.optimizer.Ftrl`` (dense arrays: every row is updated)."""
    return _update(FTRL_UPDATE, weight, grad, (z, n), dict(
        lr=lr, lamda1=lamda1, beta=beta, wd=wd, rescale_grad=rescale_grad,
        clip_gradient=clip_gradient), out)


# LAMB ------------------------------------------------------------------------------------
def _required(op: Op, weight, **values) -> None:
    """MXNet's required attributes that Python signatures must give defaults."""
    for name, value in values.items():
        if value is None:
            raise OperatorError(op.name, f"the attribute {name!r} is required",
                                [getattr(weight, "shape", None)],
                                [getattr(weight, "dtype", None)], getattr(weight, "context", None))


def _overlap(a, b) -> bool:
    if a is b:
        return True
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return np.may_share_memory(a, b) and bool(np.shares_memory(a, b))
    return not isinstance(a, np.ndarray) and _may_share_memory(a, b)


def _check_rule(op: Op, arrays, attrs: dict, infer=None, written=None) -> None:
    """Validate one group of an op with mixed shapes or dtypes (the LAMB family)
    by its rule; the arrays it writes must be free (not in an autograd graph, not
    overlapping another input)."""
    for x in arrays:
        if not isinstance(x, NDArray):
            raise OperatorError(op.name, f"expected NDArray inputs, got "
                                f"{[type(a).__name__ for a in arrays]}")
    w = arrays[0]
    shapes = [x.shape for x in arrays]
    dtypes = [x.dtype for x in arrays]
    if not is_float(w.dtype):
        raise OperatorError(op.name, f"the weight must be a float array, got {w.dtype}",
                            shapes, dtypes, w.context)
    try:
        (infer or op.infer)(tuple(shapes), tuple(dtypes), attrs)
    except MXCoreError as exc:
        raise OperatorError(op.name, str(exc), shapes, dtypes, w.context) from None
    for i in (op.mutates if written is None else written):
        if type(arrays[i]._ag) is tuple:
            raise OperatorError(op.name, "cannot update an array recorded by autograd in "
                                "place (it is an intermediate result of the graph)", shapes,
                                dtypes, w.context)
        if any(j != i and _overlap(arrays[i]._data, x._data) for j, x in enumerate(arrays)):
            raise OperatorError(op.name, "the arrays it writes must not share memory with "
                                "another input", shapes, dtypes, w.context)


def _lamb1_attrs(beta1, beta2, epsilon, t, bias_correction, wd, rescale_grad,
                 clip_gradient) -> dict:
    return dict(beta1=float(beta1), beta2=float(beta2), epsilon=float(epsilon), t=int(t),
                bias_correction=bool(bias_correction), wd=float(wd),
                rescale_grad=float(rescale_grad), clip_gradient=float(clip_gradient))


def _phase1(op: Op, arrays, attrs: dict, out) -> NDArray:
    _required(op, arrays[0], t=attrs["t"], wd=attrs["wd"])
    attrs = _lamb1_attrs(**attrs)
    _check_rule(op, arrays, attrs)
    g = invoke(op, arrays, attrs)
    if out is None:
        return g
    out[...] = g  # MXNet's out receives g
    return out


def _phase2(op: Op, arrays, attrs: dict, out) -> NDArray:
    attrs = {k: float(v) for k, v in attrs.items()}
    weight = arrays[0]
    if out is not None and out is not weight:
        if not isinstance(out, NDArray) or out.shape != weight.shape \
                or out.dtype != weight.dtype:
            raise OperatorError(op.name, f"out must be an NDArray of shape {weight.shape} "
                                f"and dtype {weight.dtype}", [weight.shape], [weight.dtype],
                                weight.context)
        out[...] = weight  # out gets the new weight, weight keeps its value
        arrays = (out,) + tuple(arrays[1:])
    _check_rule(op, arrays, attrs)
    invoke(op, arrays, attrs)
    return arrays[0]


def lamb_update_phase1(weight, grad, mean, var, beta1=0.9, beta2=0.999, epsilon=1e-6,
                       t=None, bias_correction=True, wd=None, rescale_grad=1.0,
                       clip_gradient=-1.0, out=None) -> NDArray:
    """LAMB's first phase (You et al. 2019): updates ``mean`` and ``var`` in place
    and returns the direction ``g = mean_hat/(sqrt(var_hat) + epsilon) +
    wd*weight`` (``t``, the update count, and ``wd`` are required)."""
    return _phase1(LAMB_UPDATE_PHASE1, (weight, grad, mean, var), dict(
        beta1=beta1, beta2=beta2, epsilon=epsilon, t=t, bias_correction=bias_correction,
        wd=wd, rescale_grad=rescale_grad, clip_gradient=clip_gradient), out)


def lamb_update_phase2(weight, g, r1, r2, lr, lower_bound=-1.0, upper_bound=-1.0,
                       out=None) -> NDArray:
    """LAMB's second phase: ``weight -= lr * r1/r2 * g`` with ``r1`` (the weight's
    norm, clipped to the bounds that are >= 0) and ``r2`` (``g``'s norm) given as
    one-element arrays; the ratio is 1 when either norm is 0."""
    return _phase2(LAMB_UPDATE_PHASE2, (weight, g, r1, r2), dict(
        lr=lr, lower_bound=lower_bound, upper_bound=upper_bound), out)


def mp_lamb_update_phase1(weight, grad, mean, var, weight32, beta1=0.9, beta2=0.999,
                          epsilon=1e-6, t=None, bias_correction=True, wd=None,
                          rescale_grad=1.0, clip_gradient=-1.0, out=None) -> NDArray:
    """``lamb_update_phase1`` for a 16-bit weight with a float32 master copy
    ``weight32`` (and float32 ``mean``/``var``); ``g`` is float32."""
    return _phase1(MP_LAMB_UPDATE_PHASE1, (weight, grad, mean, var, weight32), dict(
        beta1=beta1, beta2=beta2, epsilon=epsilon, t=t, bias_correction=bias_correction,
        wd=wd, rescale_grad=rescale_grad, clip_gradient=clip_gradient), out)


def mp_lamb_update_phase2(weight, g, r1, r2, weight32, lr, lower_bound=-1.0,
                          upper_bound=-1.0, out=None) -> NDArray:
    """``lamb_update_phase2`` on the float32 master copy ``weight32``, whose new
    value the 16-bit weight then takes.  (MXNet 1.9.1's kernel leaves ``weight32``
    unchanged, so its master copy never moves; here it is updated, as the
    operator's documentation says.)"""
    return _phase2(MP_LAMB_UPDATE_PHASE2, (weight, g, r1, r2, weight32), dict(
        lr=lr, lower_bound=lower_bound, upper_bound=upper_bound), out)


_MULTI_LAMB_KWARGS = ("beta1", "beta2", "epsilon", "rescale_grad", "lower_bound",
                      "upper_bound", "clip_gradient", "bias_correction")


def _multi_lamb(op: Op, groups, step_count, lrs, wds, out, num_tensors, kwargs):
    n = len(groups[0])
    num_tensors = int(num_tensors) or n
    lists = dict(step_count=step_count, learning_rates=lrs, wds=wds)
    if any(len(g) != num_tensors for g in groups) or \
            any(len(v) != num_tensors for v in lists.values()):
        counts = ", ".join(f"{len(v)} {k}" for k, v in lists.items())
        raise OperatorError(op.name, f"expected num_tensors={num_tensors} of each list; got "
                            f"{', '.join(str(len(g)) for g in groups)} arrays and {counts}")
    unknown = set(kwargs) - set(_MULTI_LAMB_KWARGS)
    if unknown:
        raise OperatorError(op.name, f"unknown argument(s) {sorted(unknown)}; it takes "
                            f"{', '.join(_MULTI_LAMB_KWARGS)}")
    weights = list(groups[0])
    if out is not None and any(o is not w for o, w in zip(out, weights)):
        if len(out) != num_tensors:
            raise OperatorError(op.name, f"out must hold num_tensors={num_tensors} arrays, "
                                f"got {len(out)}")
        for o, w in zip(out, weights):
            o[...] = w  # out gets the new weights, the weights keep their values
        weights = list(out)
    attrs = dict(learning_rates=tuple(map(float, lrs)), wds=tuple(map(float, wds)),
                 step_count=tuple(int(s) for s in step_count), num_tensors=num_tensors)
    attrs.update({k: bool(v) if k == "bias_correction" else float(v)
                  for k, v in kwargs.items()})
    attrs = op.check_attrs(attrs)
    per = len(groups)
    data = [a for arrays in zip(weights, *groups[1:]) for a in arrays]
    infer_one = _lamb1_infer if per == 4 else _mp_lamb1_infer
    written = [i for i in range(per) if i != 1]
    for i in range(0, len(data), per):
        _check_rule(op, data[i:i + per], attrs, infer_one, written)
    invoke(op, data, attrs)
    return weights


def multi_lamb_update(weights, grads, mean, var, step_count, lrs, wds, out=None,
                      num_tensors=0, **kwargs):
    """LAMB on several tensors in one call (MXNet's ``contrib.multi_lamb_update``):
    lists of weights, gradients, means and variances, with one update count,
    learning rate and weight decay per tensor.  ``kwargs``: beta1, beta2, epsilon,
    rescale_grad, lower_bound, upper_bound, clip_gradient, bias_correction.
    Returns the updated weights (``out``, when given, receives them instead)."""
    return _multi_lamb(MULTI_LAMB_UPDATE, (weights, grads, mean, var), step_count, lrs, wds,
                       out, num_tensors, kwargs)


def multi_mp_lamb_update(weights, grads, mean, var, weights32, step_count, lrs, wds,
                         out=None, num_tensors=0, **kwargs):
    """``multi_lamb_update`` for 16-bit weights with float32 master copies
    ``weights32`` (MXNet's ``contrib.multi_mp_lamb_update``)."""
    return _multi_lamb(MULTI_MP_LAMB_UPDATE, (weights, grads, mean, var, weights32),
                       step_count, lrs, wds, out, num_tensors, kwargs)
