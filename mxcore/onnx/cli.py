"""``mxcore onnx export`` / ``mxcore onnx import``: the command-line side of mx.onnx."""
from __future__ import annotations

import argparse


def add_parser(sub, add_debug, shape_spec) -> None:
    """The ``onnx`` subcommand of the ``mxcore`` parser."""
    p = sub.add_parser("onnx", help="export checkpoints to ONNX, import ONNX models")
    onnx = p.add_subparsers(dest="onnx_command", required=True)
    e = onnx.add_parser("export", help="write PREFIX-symbol.json + PREFIX-EPOCH.params as "
                                       "an ONNX model")
    e.add_argument("prefix", help="checkpoint prefix (PREFIX-symbol.json)")
    e.add_argument("epoch", type=int, help="checkpoint epoch (PREFIX-%%04d.params)")
    e.add_argument("--shape", action="append", required=True, type=shape_spec,
                   help="an input's shape, e.g. 1,3,224,224; once per input, in order")
    e.add_argument("--dtype", default="float32", help="the inputs' dtype")
    e.add_argument("--opset", type=int, default=None,
                   help="ONNX opset, 13..21 (default: the highest the onnx package knows)")
    e.add_argument("--dynamic", action="store_true", help="leave every input dim symbolic")
    e.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    add_debug(e)
    e.set_defaults(func=_export)
    i = onnx.add_parser("import", help="write an ONNX model as PREFIX-symbol.json + "
                                       "PREFIX-0000.params")
    i.add_argument("model", help="the .onnx file")
    i.add_argument("-o", "--output", required=True, metavar="PREFIX",
                   help="checkpoint prefix to write")
    add_debug(i)
    i.set_defaults(func=_import)


def _export(args: argparse.Namespace) -> int:
    from mxcore.onnx import export_model
    path = export_model(f"{args.prefix}-symbol.json", f"{args.prefix}-{args.epoch:04d}.params",
                        in_shapes=list(args.shape), in_types=args.dtype,
                        onnx_file_path=args.output, dynamic=args.dynamic,
                        opset_version=args.opset)
    print(f"wrote {path}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from mxcore.model import save_checkpoint
    from mxcore.onnx import import_model
    sym, arg_params, aux_params = import_model(args.model)
    save_checkpoint(args.output, 0, sym, arg_params, aux_params)
    print(f"wrote {args.output}-symbol.json and {args.output}-0000.params "
          f"(inputs: {[n for n in sym.list_arguments() if n not in arg_params]})")
    return 0
