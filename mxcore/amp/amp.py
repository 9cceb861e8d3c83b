"""Automatic mixed precision (MXNet 1.x's ``mx.contrib.amp``): ``init`` makes the listed
operators run in float16 or bfloat16 while parameters stay float32 master copies;
``init_trainer`` and ``scale_loss`` add dynamic loss scaling to a gluon Trainer."""
from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import hal

from mxcore.amp import lists as _lists
from mxcore.amp.loss_scaler import LossScaler
from mxcore.amp.wrap import Patches, install
from mxcore.base import MXCoreError

log = logging.getLogger("mxcore.amp")

Conditional = Sequence[Tuple[str, str, Sequence[str]]]


def target_name(target_dtype: Any, where: str) -> str:
    """'float16' or 'bfloat16' from a name or dtype; a ValueError naming the argument
    and the allowed values otherwise."""
    try:
        name = hal.dtype_name(hal.to_dtype(target_dtype))
    except Exception:  # noqa: BLE001 - not a dtype at all: reported below
        name = None
    if name not in _lists.TARGET_DTYPES:
        allowed = ", ".join(repr(t) for t in _lists.TARGET_DTYPES)
        raise ValueError(f"{where}: target_dtype must be one of {allowed}, got "
                         f"{target_dtype!r}")
    return name


def check_op_lists(where: str, lp16: Sequence[str], fp32: Sequence[str],
                   conditional: Conditional) -> None:
    """Each name an operator mxcore knows, in one list only."""
    from mxcore.graph import functions
    for label, names in (("target precision ops", lp16), ("fp32_ops", fp32),
                         ("conditional_fp32_ops", [c[0] for c in conditional])):
        for name in names:
            try:
                functions.op_function(name)
            except functions.UnknownGraphOpError:
                raise ValueError(f"{where}: {label} names {name!r}, which is not an mxcore "
                                 "operator (mx.nd function or graph op name)") from None
    groups = (("target precision ops", set(lp16)), ("fp32_ops", set(fp32)),
              ("conditional_fp32_ops", {c[0] for c in conditional}))
    for i, (a, names_a) in enumerate(groups):
        for b, names_b in groups[i + 1:]:
            common = sorted(names_a & names_b)
            if common:
                raise ValueError(f"{where}: ops cannot be in two lists; {a} and {b} both "
                                 f"hold {common}")


def op_names(value: Any, label: str, where: str) -> Tuple[str, ...]:
    """A list argument of operator names as a tuple (a lone string is an error, not a
    list of letters)."""
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise TypeError(f"{where}: {label} must be a list of operator names, got "
                        f"{value!r}")
    return tuple(value)


def conditional_rows(rows: Any, where: str) -> Tuple[Tuple[str, str, Tuple[str, ...]], ...]:
    """``conditional_fp32_ops`` as (operator, attribute, (values...)) rows."""
    out = []
    for row in rows:
        if not isinstance(row, (list, tuple)) or len(row) != 3 or not isinstance(row[0], str) \
                or not isinstance(row[1], str) or not isinstance(row[2], (list, tuple)):
            raise TypeError(f"{where}: conditional_fp32_ops rows are (operator, attribute, "
                            f"[values]), got {row!r}")
        out.append((row[0], row[1], tuple(str(v) for v in row[2])))
    return tuple(out)


class _State(NamedTuple):
    target: str
    config: Tuple[Any, ...]
    patches: Patches
    loss_scaler: LossScaler
    scaler_given: List[bool]  # whether init_trainer handed out loss_scaler yet


_STATE: Optional[_State] = None
_LOCK = threading.Lock()


def init(target_dtype: Union[str, Any] = "float16",
         target_precision_ops: Optional[Sequence[str]] = None,
         conditional_fp32_ops: Optional[Conditional] = None,
         fp32_ops: Optional[Sequence[str]] = None,
         layout_optimization: bool = False) -> None:
    """Turn AMP on for this process, before the model is built or hybridized.

    The operators of ``list_lp16_ops(target_dtype)`` (or ``target_precision_ops``) get
    their float inputs cast to ``target_dtype`` ('float16' or 'bfloat16'), those of
    ``list_fp32_ops`` (``fp32_ops``) to float32, those of
    ``list_conditional_fp32_ops`` (``conditional_fp32_ops``: (operator, attribute,
    values) rows) to float32 when the attribute has one of the values, and those of
    ``list_widest_type_cast`` to the widest float type among their inputs.  Casts are
    operators, so gradients flow back in each input's own type: float32 parameters
    get float32 gradients.  Calling ``init`` again with the same arguments does
    nothing; another target dtype or other lists are an error."""
    global _STATE
    target = target_name(target_dtype, "amp.init")
    if layout_optimization:
        raise ValueError("amp.init: layout_optimization=True (rewriting convolution layouts "
                         "to channel-last) is not provided by mxcore; leave it False")
    defaults = _lists.lists_for(target)
    lp16 = op_names(target_precision_ops, "target_precision_ops", "amp.init") \
        if target_precision_ops is not None else defaults.lp16
    fp32 = op_names(fp32_ops, "fp32_ops", "amp.init") if fp32_ops is not None else defaults.fp32
    conditional = conditional_rows(conditional_fp32_ops, "amp.init") \
        if conditional_fp32_ops is not None else defaults.conditional_fp32
    config = (target, lp16, fp32, conditional)
    with _LOCK:
        if _STATE is not None:
            if _STATE.config == config:
                return
            if _STATE.target != target:
                raise MXCoreError(f"amp.init: AMP is already initialised with target_dtype "
                                  f"{_STATE.target!r} in this process; it cannot change to "
                                  f"{target!r}")
            raise MXCoreError("amp.init: AMP is already initialised in this process with "
                              "other operator lists; it is initialised once, before the "
                              "model is built")
        check_op_lists("amp.init", lp16, fp32, conditional)
        patches = Patches()
        scaler = LossScaler()
        try:
            install(defaults, target, patches, lambda: scaler, lp16, fp32, conditional)
        except BaseException:
            patches.restore()
            raise
        _STATE = _State(target, config, patches, scaler, [False])
    log.info("Using AMP (%s)", target)


def _reset() -> None:
    """Turn AMP off: the namespaces and operators get their own functions back (tests
    use it so that AMP never outlives the test that turned it on)."""
    global _STATE
    with _LOCK:
        if _STATE is not None:
            _STATE.patches.restore()
        _STATE = None


def initialized_dtype() -> Optional[str]:
    """The target dtype AMP was initialised with, or None while it is off."""
    state = _STATE
    return state.target if state is not None else None


def _trainer_types():
    from mxcore.gluon.trainer import Trainer
    from mxcore.optimizer import Optimizer
    return Trainer, Optimizer


def _check_trainer(optimizer_or_trainer: Any, where: str) -> None:
    Trainer, Optimizer = _trainer_types()
    if isinstance(optimizer_or_trainer, Trainer):
        return
    if isinstance(optimizer_or_trainer, Optimizer):
        raise TypeError(f"{where}: AMP works with a gluon Trainer, not an Optimizer "
                        f"({type(optimizer_or_trainer).__name__}); wrap the parameters in "
                        "gluon.Trainer")
    raise TypeError(f"{where}: optimizer_or_trainer must be a gluon Trainer, got "
                    f"{type(optimizer_or_trainer).__name__}")


def init_trainer(optimizer_or_trainer: Any, loss_scaler: Optional[LossScaler] = None) -> None:
    """Give a gluon Trainer a dynamic loss scaler: ``scale_loss`` scales the loss by it,
    the next ``step`` divides the gradients by it (through the trainer's gradient
    rescaling) and skips the update when a gradient is not finite.  The first trainer
    gets the scaler that AMP's loss-output layers (SoftmaxOutput...) use, later ones a
    new one; ``loss_scaler`` (an mxcore addition) gives one of other settings."""
    state = _STATE
    if state is None:
        raise MXCoreError("amp.init_trainer: AMP is not initialised; call amp.init() first")
    _check_trainer(optimizer_or_trainer, "amp.init_trainer")
    if loss_scaler is not None and not isinstance(loss_scaler, LossScaler):
        raise TypeError(f"amp.init_trainer: loss_scaler must be an amp.LossScaler, got "
                        f"{type(loss_scaler).__name__}")
    trainer = optimizer_or_trainer
    with _LOCK:
        if loss_scaler is not None:
            scaler = loss_scaler
        elif state.scaler_given[0]:
            scaler = LossScaler()
        else:
            state.scaler_given[0] = True
            scaler = state.loss_scaler
    trainer._amp_loss_scaler = scaler
    trainer._amp_original_scale = trainer._scale
    _guard_updates(trainer)


def _guard_updates(trainer: Any) -> None:
    """Skip the trainer's updates on overflow: its two update paths (local updaters,
    and updates on the kvstore) first ask the loss scaler."""
    if trainer.__dict__.get("_amp_guarded"):
        return
    for name in ("_update", "_push_and_update"):
        update = getattr(type(trainer), name)

        def guarded(ignore_stale_grad: bool, _update=update, _trainer=trainer) -> None:
            scaler = getattr(_trainer, "_amp_loss_scaler", None)
            if scaler is not None and scaler.has_overflow(_trainer._params):
                return  # the gradients hold inf/NaN: no update; the scale went down
            _update(_trainer, ignore_stale_grad)
        setattr(trainer, name, guarded)
    trainer._amp_guarded = True


def _scaler_of(trainer: Any, where: str) -> LossScaler:
    _check_trainer(trainer, where)
    scaler = getattr(trainer, "_amp_loss_scaler", None)
    if scaler is None:
        raise MXCoreError(f"{where}: the trainer has no loss scaler; call "
                          "amp.init_trainer(trainer) first")
    return scaler


@contextlib.contextmanager
def scale_loss(loss: Any, optimizer_or_trainer: Any) -> Iterator[Any]:
    """``with amp.scale_loss(loss, trainer) as scaled: scaled.backward()``: yields the
    loss (or list of losses) times the loss scale, and makes the trainer's next step
    divide the gradients by that scale."""
    import numpy as np
    scaler = _scaler_of(optimizer_or_trainer, "amp.scale_loss")
    scale = scaler.loss_scale
    optimizer_or_trainer._scale = optimizer_or_trainer._amp_original_scale / scale
    # a scale too large for some step makes 16-bit gradients overflow to inf: expected,
    # and what the scaler looks for (the step is skipped and the scale lowered), so
    # numpy's overflow warnings from the backward inside this block are not shown
    with np.errstate(over="ignore", invalid="ignore"):
        if isinstance(loss, (list, tuple)):
            yield [x * scale for x in loss]
        else:
            yield loss * scale


def unscale(optimizer_or_trainer: Any) -> None:
    """Divide the gradients by the loss scale now (to read or clip them before
    ``step``); the step then applies no further scaling."""
    from mxcore import autograd
    _scaler_of(optimizer_or_trainer, "amp.unscale")
    trainer = optimizer_or_trainer
    scale = trainer._scale
    with autograd.pause():
        for p in trainer._params:
            if p.grad_req != "null" and p._data is not None:
                for g in p.list_grad():
                    g *= scale
    trainer._scale = 1.0


# the lists ---------------------------------------------------------------------------------------
def list_lp16_ops(target_dtype: Any = "float16") -> List[str]:
    """Operators that run in the low-precision type."""
    return list(_lists.lists_for(target_name(target_dtype, "amp.list_lp16_ops")).lp16)


def list_fp32_ops(target_dtype: Any = "float16") -> List[str]:
    """Operators that run in float32."""
    return list(_lists.lists_for(target_name(target_dtype, "amp.list_fp32_ops")).fp32)


def list_lp16_fp32_ops(target_dtype: Any = "float16") -> List[str]:
    """Operators that run in either precision (the type of their input): left alone."""
    return list(_lists.lists_for(target_name(target_dtype, "amp.list_lp16_fp32_ops")).lp16_fp32)


def list_conditional_fp32_ops(target_dtype: Any = "float16") -> List[Tuple[str, str, List[str]]]:
    """(operator, attribute, values): float32 when the attribute has one of the values."""
    rows = _lists.lists_for(target_name(target_dtype, "amp.list_conditional_fp32_ops"))
    return [(op, attr, list(values)) for op, attr, values in rows.conditional_fp32]


def list_widest_type_cast(target_dtype: Any = "float16") -> List[str]:
    """Operators that run in the widest float type of their inputs."""
    return list(_lists.lists_for(target_name(target_dtype, "amp.list_widest_type_cast")).widest)


def list_loss_output_functions(target_dtype: Any = "float16") -> List[str]:
    """Output layers whose gradient is multiplied by the loss scale."""
    return list(_lists.lists_for(
        target_name(target_dtype, "amp.list_loss_output_functions")).loss_output)


def list_lp16_use_fp32_params(target_dtype: Any = "float16") -> None:
    """Low-precision operators that keep float32 parameters: none in mxcore (MXNet's
    bfloat16 BatchNorm runs in float32 here, parameters and all)."""
    target_name(target_dtype, "amp.list_lp16_use_fp32_params")
    return None


# MXNet's ``mxnet.contrib.amp.amp`` module holds the conversion functions and the op lists
# too: code written as ``from mxnet.contrib.amp import amp; amp.convert_model(...)``
# finds them here (looked up on use: convert.py imports this module's helpers)
lists = _lists
_CONVERT = ("convert_hybrid_block", "convert_model", "convert_symbol")


def __getattr__(name: str):
    if name in _CONVERT:
        from mxcore.amp import convert
        return getattr(convert, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
