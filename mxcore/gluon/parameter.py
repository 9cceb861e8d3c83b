"""Parameters: named, lazily shaped arrays with gradients (MXNet Gluon 1.x).

A Parameter may be created with unknown dimensions (0 in ``shape``); with
``allow_deferred_init`` its initialisation then waits until the owning block
sees its first input and fills in the shape (``HybridBlock.infer_shape``).
"""
from __future__ import annotations

import re
import warnings
import weakref
from collections import OrderedDict
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np

from hal import Device, to_dtype
from mxcore.base import MXCoreError
from mxcore.ndarray import NDArray

GRAD_REQS = ("write", "add", "null")
#: storage types MXNet's Parameter takes; mxcore stores every one densely, the
#: Trainer's kvstore choices follow the declared type as MXNet's do
STYPES = ("default", "row_sparse", "csr")


class DeferredInitializationError(MXCoreError):
    """A parameter's shape is not known yet (it is set by the first forward)."""


class TrainerConflictError(MXCoreError, RuntimeError):
    """A sparse Parameter was given to a second Trainer (MXNet allows one)."""


class StorageTypeError(MXCoreError, RuntimeError):
    """A call that does not fit the Parameter's storage type (MXNet: RuntimeError)."""


def _ctx_list(ctx) -> List[Device]:
    from mxcore.device import default_device, device
    if ctx is None:
        return [default_device()]
    if isinstance(ctx, (list, tuple)):
        return [device(c) for c in ctx]
    return [device(ctx)]


def _shape_known(shape) -> bool:
    return shape is not None and all(int(s) > 0 for s in shape)


class Parameter:
    """A model parameter: data (one copy per device) and its gradient."""

    def __init__(self, name: str = "weight", grad_req: str = "write", shape=None,
                 dtype="float32", lr_mult: float = 1.0, wd_mult: float = 1.0, init=None,
                 allow_deferred_init: bool = False, differentiable: bool = True,
                 stype: str = "default", grad_stype: str = "default"):
        if grad_req not in GRAD_REQS:
            raise ValueError(f"Parameter {name!r}: grad_req must be one of {GRAD_REQS}, "
                             f"got {grad_req!r}")
        for what, value in (("stype", stype), ("grad_stype", grad_stype)):
            if value not in STYPES:
                raise ValueError(f"Parameter {name!r}: {what} must be one of {STYPES}, "
                                 f"got {value!r}")
        self.name = name
        self._shape = None if shape is None else (
            (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape))
        self.dtype = to_dtype(dtype)
        self.lr_mult = lr_mult
        self.wd_mult = wd_mult
        self.init = init
        self.allow_deferred_init = allow_deferred_init
        self._differentiable = differentiable
        self._grad_req = grad_req if differentiable else "null"
        self._data: Optional[List[NDArray]] = None
        self._ctx_list: Optional[List[Device]] = None
        self._deferred_init = ()
        self._stype = stype
        self._grad_stype = grad_stype
        self._trainer = None                 # the last Trainer given this parameter
        self._trainers = weakref.WeakSet()   # every such Trainer (told when data is replaced)

    def __repr__(self) -> str:
        return f"Parameter {self.name} (shape={self.shape}, dtype={self.dtype.name})"

    # pickle and deepcopy: a WeakSet does not pickle, a list does
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_trainers"] = list(self._trainers)
        return state

    def __setstate__(self, state: dict) -> None:
        trainers = state.pop("_trainers", [])
        self.__dict__.update(state)
        self._trainers = weakref.WeakSet(trainers)

    # shape and flags ------------------------------------------------------------------
    @property
    def shape(self):
        return self._shape

    @shape.setter
    def shape(self, new_shape) -> None:
        new_shape = tuple(int(s) for s in new_shape)
        if self._shape is not None:
            if len(new_shape) != len(self._shape) or any(
                    old > 0 and new > 0 and old != new
                    for old, new in zip(self._shape, new_shape)):
                raise MXCoreError(f"Parameter {self.name!r}: cannot change shape from "
                                  f"{self._shape} to {new_shape}")
            # 0 means unknown on either side: a known size is kept (as MXNet does)
            new_shape = tuple(new if new > 0 else old
                              for old, new in zip(self._shape, new_shape))
        self._shape = new_shape

    @property
    def grad_req(self) -> str:
        return self._grad_req

    @grad_req.setter
    def grad_req(self, req: str) -> None:
        if req not in GRAD_REQS:
            raise ValueError(f"grad_req must be one of {GRAD_REQS}, got {req!r}")
        if not self._differentiable:
            req = "null"
        if self._grad_req == req:
            return
        self._grad_req = req
        if self._data is not None:
            self._init_grad()

    # initialisation ---------------------------------------------------------------------
    def initialize(self, init=None, ctx=None, default_init=None, force_reinit: bool = False):
        """Allocate and fill the data on ``ctx`` (a device or a list of them).
        ``self.init`` wins over ``init``, which wins over ``default_init``."""
        from mxcore import initializer
        if self._data is not None and not force_reinit:
            warnings.warn(f"Parameter {self.name!r} is already initialized, ignoring. "
                          "Set force_reinit=True to re-initialize.", stacklevel=2)
            return
        self._data = None
        ctxs = _ctx_list(ctx)
        if default_init is None:
            default_init = initializer.Uniform()
        if not _shape_known(self._shape):
            if self.allow_deferred_init:
                self._deferred_init = (init, ctxs, default_init)
                return
            raise MXCoreError(f"cannot initialize Parameter {self.name!r}: its shape "
                              f"{self._shape} is not fully known and deferred "
                              "initialization is not allowed")
        self._finish_init(init, ctxs, default_init)

    def _finish_init(self, init, ctxs, default_init) -> None:
        from mxcore import initializer
        from mxcore.ops.creation import zeros
        data = zeros(self._shape, ctx=ctxs[0], dtype=self.dtype)
        # As MXNet 1.x: the chosen initializer fills any Parameter through its
        # _init_weight, whatever the name (the name rules serve InitDesc calls only)
        chosen = self.init if self.init is not None else \
            (init if init is not None else default_init)
        desc = initializer.InitDesc(self.name, {"__init__": chosen})
        initializer.create(default_init)(desc, data)
        self._init_impl(data, ctxs)

    def _finish_deferred_init(self) -> None:
        if not self._deferred_init:
            return
        init, ctxs, default_init = self._deferred_init
        if not _shape_known(self._shape):
            raise DeferredInitializationError(
                f"Parameter {self.name!r} still has unknown shape {self._shape} after shape "
                "inference")
        self._deferred_init = ()
        self._finish_init(init, ctxs, default_init)

    def _init_impl(self, data: NDArray, ctxs: Sequence[Device]) -> None:
        self._ctx_list = list(ctxs)
        self._data = [data if data.context == c else data.copyto(c) for c in ctxs]
        self._init_grad()
        self._data_replaced()

    # trainers ------------------------------------------------------------------------------
    def _set_trainer(self, trainer) -> None:
        """Record the Trainer that updates this parameter (None: forget the last one).
        As in MXNet, a sparse parameter (``stype`` other than 'default') takes one."""
        old = self._trainer
        if self._stype != "default" and old is not None and trainer is not None \
                and old is not trainer:
            raise TrainerConflictError(
                f"Failed to set the trainer for Parameter {self.name!r} because it was "
                f"already set. More than one trainer for a {self._stype} Parameter is not "
                "supported.")
        if trainer is None:
            if old is not None:
                self._trainers.discard(old)
        else:
            self._trainers.add(trainer)
        self._trainer = trainer

    def _data_replaced(self) -> None:
        """Tell the Trainers keeping this parameter's value in a kvstore that the
        value changed, so that the store takes the new one before their next step."""
        for trainer in list(self._trainers):
            trainer._param_data_changed(self)

    def _init_grad(self) -> None:
        for d in self._data:
            if self._grad_req == "null":
                d._ag = None
            else:
                d.attach_grad(self._grad_req)

    def _load_init(self, array: np.ndarray, ctx) -> None:
        """Initialise straight from loaded data (shape/dtype already checked)."""
        from mxcore.ops.creation import array as nd_array
        ctxs = _ctx_list(ctx) if ctx is not None else (
            self._deferred_init[1] if self._deferred_init else _ctx_list(None))
        self._shape = tuple(array.shape)
        self._deferred_init = ()
        self._init_impl(nd_array(array, ctx=ctxs[0], dtype=self.dtype), ctxs)

    # access ----------------------------------------------------------------------------------
    def _check_initialized(self):
        if self._data is not None:
            return
        if self._deferred_init:
            raise DeferredInitializationError(
                f"Parameter {self.name!r} has not been initialized yet because "
                "initialization was deferred: its shape is set by the first forward pass")
        raise MXCoreError(f"Parameter {self.name!r} has not been initialized. Call "
                          "initialize() on it or on the block that owns it "
                          "(net.initialize()) first")

    def data(self, ctx=None) -> NDArray:
        d = self._data
        if d is not None and len(d) == 1 and (ctx is None or d[0]._device is ctx):
            return d[0]
        self._check_initialized()
        if ctx is None:
            return d[0]
        for arr in d:
            if arr._device == ctx:
                return arr
        raise MXCoreError(f"Parameter {self.name!r} was not initialized on {ctx!r}; it lives "
                          f"on {self._ctx_list}")

    def list_data(self) -> List[NDArray]:
        self._check_initialized()
        return list(self._data)

    def grad(self, ctx=None) -> NDArray:
        if self._grad_req == "null":
            raise MXCoreError(f"Parameter {self.name!r} has no gradient: grad_req is 'null'")
        return self.data(ctx).grad

    @property
    def _grad(self) -> Optional[List[NDArray]]:
        """The gradient buffers, one per device (None without gradients), as MXNet's."""
        if self._data is None or self._grad_req == "null":
            return None
        return [d.grad for d in self._data]

    def var(self):
        """The graph variable of this Parameter (``mx.sym.var`` with its name, shape,
        dtype, multipliers and initializer; one per Parameter, so a shared parameter is
        one argument of a graph)."""
        var = self.__dict__.get("_var")
        if var is None:
            from mxcore import symbol
            shape = self._shape if self._shape and all(s > 0 for s in self._shape) else None
            init = self.init
            var = self.__dict__["_var"] = symbol.var(
                self.name, shape=shape, dtype=self.dtype, lr_mult=self.lr_mult,
                wd_mult=self.wd_mult,
                init=init if init is None or isinstance(init, str) or hasattr(init, "dumps")
                else None)
        return var

    def list_grad(self) -> List[NDArray]:
        if self._grad_req == "null":
            raise MXCoreError(f"Parameter {self.name!r} has no gradient: grad_req is 'null'")
        return [d.grad for d in self.list_data()]

    # row_sparse parameters, stored densely ----------------------------------------------------
    def row_sparse_data(self, row_id: NDArray) -> NDArray:
        """The value on ``row_id``'s device, as the Trainer's kvstore holds it, of a
        ``stype='row_sparse'`` parameter.  mxcore stores it densely, so every row
        is current (MXNet's copy keeps only the rows listed in ``row_id``)."""
        return self._pull_rows(row_id, row_id.context if isinstance(row_id, NDArray) else None)

    def list_row_sparse_data(self, row_id: NDArray) -> List[NDArray]:
        """``row_sparse_data`` on every device of the parameter."""
        return self._pull_rows(row_id, None)

    def _pull_rows(self, row_id, ctx):
        if self._stype != "row_sparse":
            raise StorageTypeError(
                f"Cannot return a copy of Parameter {self.name!r} via row_sparse_data() "
                f"because its storage type is {self._stype}. Please use data() instead.")
        if not isinstance(row_id, NDArray):
            raise TypeError(f"row_id must be an NDArray, got {type(row_id).__name__}")
        if self._trainer is None:
            raise StorageTypeError(f"Cannot get row_sparse data for Parameter {self.name!r} "
                                   "when no Trainer is created with it.")
        out = self.list_data() if ctx is None else [self.data(ctx)]
        self._trainer._row_sparse_pull(self, out, row_id)
        return out if ctx is None else out[0]

    def list_ctx(self) -> List[Device]:
        if self._data is None and self._deferred_init:
            return list(self._deferred_init[1])
        self._check_initialized()
        return list(self._ctx_list)

    def set_data(self, data) -> None:
        """Overwrite the value on every device (shape must match)."""
        if self._data is None and self._deferred_init:
            arr = data.asnumpy() if isinstance(data, NDArray) else np.asarray(data)
            self.shape = arr.shape
            self._load_init(arr, None)
            return
        self._check_initialized()
        shape = tuple(data.shape)
        if shape != self._shape:
            raise MXCoreError(f"Parameter {self.name!r}: cannot set data of shape {shape}; "
                              f"the parameter has shape {self._shape}")
        self._data_replaced()
        for d in self._data:
            d[:] = data

    def zero_grad(self) -> None:
        if self._data is None or self._grad_req == "null":
            return
        for d in self._data:
            d.grad[:] = 0

    def reset_ctx(self, ctx) -> None:
        """Move the parameter to other device(s)."""
        ctxs = _ctx_list(ctx)
        if self._data is not None:
            self._init_impl(self._data[0].copyto(ctxs[0]), ctxs)
        elif self._deferred_init:
            init, _, default_init = self._deferred_init
            self._deferred_init = (init, ctxs, default_init)
        else:
            raise MXCoreError(f"cannot reset context of uninitialized Parameter {self.name!r}")

    def cast(self, dtype) -> None:
        self.dtype = to_dtype(dtype)
        if self._data is not None:
            self._init_impl(self._data[0].astype(self.dtype), self._ctx_list)

    def _reduce(self) -> NDArray:
        """The value as one array (averaged over devices)."""
        data = self.list_data()
        if len(data) == 1:
            return data[0]
        total = data[0].copyto(data[0].context)
        for d in data[1:]:
            total += d.copyto(total.context)
        return total / len(data)


class Constant(Parameter):
    """A parameter that is not trained (grad_req 'null'), filled with ``value``."""

    def __init__(self, name: str, value):
        from mxcore import initializer
        arr = value.asnumpy() if isinstance(value, NDArray) else np.asarray(value, np.float32)
        self.value = arr
        super().__init__(name, grad_req="null", shape=arr.shape, dtype=arr.dtype,
                         init=initializer.Constant(arr.tolist()), differentiable=False)


class ParameterDict:
    """An ordered name -> Parameter mapping sharing a name prefix."""

    def __init__(self, prefix: str = "", shared: Optional["ParameterDict"] = None):
        self._prefix = prefix
        self._params: Dict[str, Parameter] = OrderedDict()
        self._shared = shared

    @property
    def prefix(self) -> str:
        return self._prefix

    def __repr__(self) -> str:
        body = "\n".join(f"  {p!r}" for p in self._params.values())
        return f"{self._prefix or 'ParameterDict'} (\n{body}\n)"

    def __getitem__(self, key: str) -> Parameter:
        return self._params[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __contains__(self, key) -> bool:
        return key in self._params

    def items(self):
        return self._params.items()

    def keys(self):
        return self._params.keys()

    def values(self):
        return self._params.values()

    def _lookup(self, name: str) -> Optional[Parameter]:
        if name in self._params:
            return self._params[name]
        if self._shared is not None and name in self._shared._params:
            self._params[name] = self._shared._params[name]
            return self._params[name]
        return None

    def get(self, name: str, **kwargs) -> Parameter:
        """The parameter ``prefix + name``, created with ``kwargs`` if absent."""
        full = self._prefix + name
        param = self._lookup(full)
        if param is None:
            param = Parameter(full, **kwargs)
            self._params[full] = param
            return param
        for key, value in kwargs.items():
            if key == "shape" and value is not None:
                param.shape = value
            elif key == "init" and value is not None and param.init is None:
                param.init = value
        return param

    def get_constant(self, name: str, value=None) -> Parameter:
        full = self._prefix + name
        param = self._lookup(full)
        if param is None:
            if value is None:
                raise KeyError(f"no constant named {full!r}; give a value to create it")
            param = Constant(full, value)
            self._params[full] = param
        return param

    def update(self, other) -> None:
        for key, value in other.items():
            if key in self._params and self._params[key] is not value:
                raise MXCoreError(f"cannot update ParameterDict: a different Parameter named "
                                  f"{key!r} already exists")
            self._params[key] = value

    def select(self, pattern: Optional[str]) -> "ParameterDict":
        out = ParameterDict(self._prefix)
        regex = re.compile(pattern) if pattern else None
        for key, value in self._params.items():
            if regex is None or regex.match(key):
                out._params[key] = value
        return out

    def initialize(self, init=None, ctx=None, verbose: bool = False,
                   force_reinit: bool = False) -> None:
        from mxcore import initializer
        init = init if init is not None else initializer.Uniform()
        for param in self._params.values():
            param.initialize(None, ctx, init, force_reinit=force_reinit)

    def zero_grad(self) -> None:
        for param in self._params.values():
            param.zero_grad()

    def reset_ctx(self, ctx) -> None:
        for param in self._params.values():
            param.reset_ctx(ctx)

    def setattr(self, name: str, value) -> None:
        """Set an attribute on every parameter, e.g. ``setattr('grad_req', 'null')``."""
        for param in self._params.values():
            setattr(param, name, value)

    def list_ctx(self) -> List[Device]:
        out = []
        for param in self._params.values():
            for c in param.list_ctx():
                if c not in out:
                    out.append(c)
        return out

    def save(self, filename: str, strip_prefix: str = "") -> None:
        from mxcore.serialization import save_arrays
        arrays = {}
        for name, param in self._params.items():
            if strip_prefix and not name.startswith(strip_prefix):
                raise MXCoreError(f"prefix {strip_prefix!r} is not a prefix of {name!r}")
            arrays[name[len(strip_prefix):]] = param._reduce().asnumpy()
        save_arrays(filename, arrays, {"format": "mxcore-parameters"})

    def load(self, filename: str, ctx=None, allow_missing: bool = False,
             ignore_extra: bool = False, restore_prefix: str = "") -> None:
        from mxcore.serialization import load_parameter_arrays
        arrays = load_parameter_arrays(filename)
        arrays = {restore_prefix + k: v for k, v in arrays.items()}
        assign_loaded(dict(self._params), arrays, filename, ctx, allow_missing, ignore_extra)


def assign_loaded(params: Dict[str, Parameter], arrays: Dict[str, np.ndarray], filename: str,
                  ctx=None, allow_missing: bool = False, ignore_extra: bool = False,
                  cast_dtype: bool = False) -> None:
    """Check every loaded array against its parameter, then assign them all:
    a bad file leaves every parameter as it was."""
    missing = [n for n in params if n not in arrays]
    extra = [n for n in arrays if n not in params]
    if missing and not allow_missing:
        raise MXCoreError(f"parameter file {filename} lacks {missing}; it holds "
                          f"{sorted(arrays)} (use allow_missing=True to skip)")
    if extra and not ignore_extra:
        raise MXCoreError(f"parameter file {filename} holds {extra}, which the model does not "
                          "have (use ignore_extra=True to skip)")
    for name, param in params.items():
        if name not in arrays:
            continue
        arr = arrays[name]
        shape = param.shape
        if shape is not None and (len(shape) != arr.ndim or any(
                s > 0 and s != a for s, a in zip(shape, arr.shape))):
            raise MXCoreError(f"cannot load parameter {name!r} ({param.name}) from {filename}: "
                              f"the file holds shape {tuple(arr.shape)}, the model expects "
                              f"{tuple(shape)}")
        if arr.dtype != param.dtype and not cast_dtype and arr.dtype.kind != param.dtype.kind:
            raise MXCoreError(f"cannot load parameter {name!r}: the file holds {arr.dtype}, the "
                              f"model expects {param.dtype} (use cast_dtype=True)")
    for name, param in params.items():
        if name not in arrays:
            continue
        arr = arrays[name].astype(param.dtype, copy=False)
        if param._data is None:
            param._load_init(arr, ctx)
        else:
            if ctx is not None and _ctx_list(ctx) != param._ctx_list:
                param._load_init(arr, ctx)
            else:
                param.set_data(arr)
