"""Checkpoints of symbolic models (MXNet's ``mx.model``): ``prefix-symbol.json`` plus
``prefix-NNNN.params``."""
from __future__ import annotations

from typing import Any, Dict, Tuple


def save_checkpoint(prefix: str, epoch: int, symbol, arg_params: Dict[str, Any],
                    aux_params: Dict[str, Any], remove_amp_cast: bool = True) -> None:
    """Write ``prefix-symbol.json`` and ``prefix-%04d.params`` (safetensors, atomically)."""
    from mxcore.serialization import save_arrays
    if symbol is not None:
        symbol.save(f"{prefix}-symbol.json", remove_amp_cast=remove_amp_cast)
    arrays = {f"arg:{k}": v.asnumpy() for k, v in arg_params.items()}
    arrays.update({f"aux:{k}": v.asnumpy() for k, v in aux_params.items()})
    save_arrays(f"{prefix}-{epoch:04d}.params", arrays,
                {"format": "mxcore-checkpoint", "version": "1"})


def load_params(prefix: str, epoch: int) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    from mxcore.module.module import load_params_file
    return load_params_file(f"{prefix}-{epoch:04d}.params")


def load_checkpoint(prefix: str, epoch: int):
    """(symbol, arg_params, aux_params) of a checkpoint, also one written by MXNet 1.x."""
    from mxcore import symbol as sym
    arg, aux = load_params(prefix, epoch)
    return sym.load(f"{prefix}-symbol.json"), arg, aux
