"""The ``mxcore`` command line.

    mxcore plugins [--json]                  plugins, their hooks, devices, counts, errors
    mxcore devices [--json]                  device kinds and their availability
    mxcore kernels [--op OP] [--device DEV] [--json]
    mxcore kernels explain OP --device cpu --dtype float32 --shape 2,3 --shape 3,4
    mxcore train mnist [--epochs N] ...      train the MNIST MLP (see --help)
    mxcore demo [--epochs N] [--device DEV]  train a linear model with autograd
    mxcore convert-params IN.params OUT.safetensors [--keep-prefixes]
                                             an MXNet 1.x parameter file to mxcore's format
    mxcore new-plugin NAME [--device KIND]  write a ready-to-install operator plugin
    mxcore launch -n N [--hostfile F] script.py args | -m module args
                                             run on N MPI ranks (dist_* kvstores); the
                                             exit code is the first failing rank's

Errors are one line on stderr, ``mxcore: error: ...``; ``--debug`` (anywhere on the
command line) or ``MXCORE_DEBUG=1`` adds the traceback.  Exit codes:

    0    success
    1    an internal error (a bug in mxcore or a plugin): rerun with --debug
    2    a user error: bad arguments, unknown device kind, operator or dtype,
         unusable device, unreadable data, unwritable output (any MXCoreError,
         hal.DeviceUnavailableError or OSError)
    3    ``train``: the training loss (or the parameters) became NaN or infinite;
         training stopped and nothing was saved
    130  interrupted (Ctrl-C): 128 + SIGINT
    141  standard output was closed early (``mxcore kernels | head``): 128 + SIGPIPE,
         what a shell reports for a program that SIGPIPE ended; nothing is printed
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import traceback
from typing import Callable, List, NoReturn, Optional, Tuple

from mxcore.base import MXCoreError

EXIT_OK = 0
EXIT_INTERNAL_ERROR = 1
EXIT_USAGE = 2
EXIT_NON_FINITE = 3
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


class UsageError(MXCoreError):
    """A request the command line cannot serve as asked (unknown device kind, op...)."""


# argument types: they raise ArgumentTypeError so that argparse reports the flag ------------

def int_at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``low``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") \
                from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return value
    parse.__name__ = f"int>={low}"
    return parse


def finite_float(low: float = 0.0, low_inclusive: bool = False,
                 high: Optional[float] = None) -> Callable[[str], float]:
    """An argparse type: a finite number above ``low`` (or equal to it when
    ``low_inclusive``) and below ``high`` when given."""
    bound = (f">= {low:g}" if low_inclusive else f"> {low:g}") + (
        f" and < {high:g}" if high is not None else "")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if (not math.isfinite(value) or value < low or (value == low and not low_inclusive)
                or (high is not None and value >= high)):
            raise argparse.ArgumentTypeError(f"expected a finite number {bound}, got {text!r}")
        return value
    parse.__name__ = f"float{bound}"
    return parse


def device_spec(text: str) -> str:
    """An argparse type: a device written ``kind[:index]`` (kept as text; whether the
    kind exists is checked when the command runs, after plugins load)."""
    from hal import parse_device
    try:
        parse_device(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def shape_spec(text: str) -> Tuple[int, ...]:
    """An argparse type: a shape such as ``2,3`` or ``(2, 3)``; empty for a scalar."""
    body = text.strip().strip("()")
    try:
        dims = tuple(int(p) for p in body.split(",") if p.strip()) if body else ()
    except ValueError:
        dims = None
    if dims is None or any(d < 0 for d in dims):
        raise argparse.ArgumentTypeError(
            f"expected a shape of non-negative integers such as 2,3, got {text!r}")
    return dims


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except where they say nothing (flags, None) or the help text
    already explains the default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        # identity checks: a default of 0 is worth showing, and 0 == False
        if (default is None or default is False or default == [] or default == argparse.SUPPRESS
                or "default" in text):
            return text
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """Every parser (subcommands included): defaults in --help, errors in one line."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"mxcore: error: {message} (see '{self.prog} --help')\n")


def _add_debug(p: argparse.ArgumentParser, top: bool = False) -> None:
    # on every subparser too, so that it may follow the subcommand; SUPPRESS there keeps
    # a subparser's default from overwriting `mxcore --debug ...`
    p.add_argument("--debug", action="store_true",
                   default=False if top else argparse.SUPPRESS,
                   help="print the traceback of an error (also MXCORE_DEBUG=1)")


# commands ----------------------------------------------------------------------------------

def _plugins(args) -> int:
    from mxcore.plugins import system
    s = system()
    infos = [info.as_dict() for info in s.plugins.values()]
    if args.json:
        print(json.dumps(infos, indent=2))
        return 0
    if not infos:
        print("no plugins found in entry-point group 'mxcore.plugins'")
    for i in infos:
        state = ("ERROR: " + i["error"]) if i["error"] else (
            "skipped: " + i["skipped"] if i["skipped"] else "loaded")
        print(f"{i['name']:12s} {i['distribution'] or i['module']} {i['version']}"
              f"{' (built-in)' if i['builtin'] else ''}")
        print(f"    {state}")
        if not i["error"] and not i["skipped"]:
            print(f"    hooks: {', '.join(i['hooks']) or '-'}; devices: "
                  f"{', '.join(i['devices']) or '-'}; ops: {i['ops']}; kernels: {i['kernels']}")
            for kind in i["devices"]:
                desc = getattr(s.registry.devices.get(kind), "description", "")
                if desc:
                    print(f"    device {kind}: {desc}")
    return 0


def _devices(args) -> int:
    from mxcore.device import device_status
    from mxcore.plugins import registry
    status = device_status()
    reg = registry()
    if args.json:
        print(json.dumps({k: {"status": v, "provider": reg.device_providers[k]}
                          for k, v in status.items()}, indent=2))
        return 0
    for kind, state in status.items():
        print(f"{kind:8s} {state}  (from {reg.device_providers[kind]})")
    return 0


def _known_kind(reg, spec: str) -> str:
    """The kind of device ``spec``, which must be one the registry knows: a registered
    device, or a kind some plugin registered kernels for."""
    from hal import parse_device
    kind = parse_device(spec).kind
    known = sorted(set(reg.devices) | {dev for (_, dev) in reg.kernels})
    if kind not in known:
        raise UsageError(f"unknown device kind {kind!r} (known kinds: "
                         f"{', '.join(known) or 'none'}; `mxcore plugins` shows load errors)")
    return kind


def _known_op(reg, name: str) -> None:
    if name not in reg.ops and not any(op == name for (op, _) in reg.kernels):
        reg.op(name)  # raises UnknownOperatorError, which says where to look


def _kernels(args) -> int:
    from mxcore.plugins import registry
    from mxcore.registry import qualified
    reg = registry()
    if args.markdown:
        from mxcore.kernel_docs import render
        sys.stdout.write(render(reg))
        return 0
    if args.action == "explain":
        if not args.op:
            raise UsageError("explain needs an operator (usage: mxcore kernels explain OP "
                             "--device DEV --dtype DTYPE [--shape S ...])")
        kind = _known_kind(reg, args.device or "cpu")
        _known_op(reg, args.op)
        shapes = tuple(args.shape) or None
        dtypes = (args.dtype,) * len(shapes) if shapes else None
        try:  # guards may read attributes: give them the op's defaults
            attrs = reg.op(args.op).check_attrs({})
        except Exception:  # noqa: BLE001 - required attributes have no default
            attrs = {}
        print(reg.explain(args.op, kind, args.dtype, shapes, dtypes, attrs))
        return 0
    kind = _known_kind(reg, args.device) if args.device else None
    if args.op:
        _known_op(reg, args.op)
    rows = []
    for (op, dev), ks in sorted(reg.kernels.items()):
        if (args.op and op != args.op) or (kind and dev != kind):
            continue
        for k in sorted(ks, key=lambda k: -k.priority):
            rows.append({"op": op, "device": dev, "kernel": qualified(k), "priority": k.priority,
                         "dtypes": sorted(k.dtypes), "guarded": k.applies is not None,
                         "op_registered": op in reg.ops})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no kernels match")
        return 1 if args.op else 0
    for r in rows:
        flags = (" guarded" if r["guarded"] else "") + ("" if r["op_registered"]
                                                          else " (op not registered)")
        print(f"{r['op']:22s} {r['device']:6s} {r['kernel']:40s} prio {r['priority']:4d} "
              f"{','.join(r['dtypes'])}{flags}")
    return 0


def _demo(args) -> int:
    """Fit y = 2 x0 - 3.4 x1 + 4.2 with autograd and plain SGD."""
    import mxcore as mx
    mx.random.seed(args.seed)
    dev = mx.device(args.device) if args.device else mx.default_device()
    n = 1000
    X = mx.nd.random.normal(0, 1, shape=(n, 2), ctx=dev)
    true_w = mx.nd.array([[2.0], [-3.4]], ctx=dev)
    y = mx.nd.dot(X, true_w) + 4.2 + mx.nd.random.normal(0, 0.01, shape=(n, 1), ctx=dev)
    w = mx.nd.random.normal(0, 0.01, shape=(2, 1), ctx=dev)
    b = mx.nd.zeros((1,), ctx=dev)
    w.attach_grad()
    b.attach_grad()
    lr, batch = 0.1, 50
    print(f"training a linear model on {dev!r}: {n} samples, batch {batch}, lr {lr}")
    for epoch in range(args.epochs):
        for i in range(0, n, batch):
            xb, yb = X[i:i + batch], y[i:i + batch]
            with mx.autograd.record():
                loss = ((mx.nd.dot(xb, w) + b - yb) ** 2).mean()
            loss.backward()
            w[:] = w - lr * w.grad
            b[:] = b - lr * b.grad
        full = ((mx.nd.dot(X, w) + b - y) ** 2).mean().asscalar()
        print(f"epoch {epoch + 1}: loss {full:.6f}")
    print(f"learned w = {w.asnumpy().ravel().astype(float).round(3).tolist()}, "
          f"b = {b.asscalar():.3f} (true: [2.0, -3.4], 4.2)")
    return 0


def _convert_params(args) -> int:
    from mxcore.mxnet_params import to_safetensors
    contents = to_safetensors(args.input, args.output, keep_prefixes=args.keep_prefixes)
    size = sum(a.nbytes for a in contents.arrays)
    kind = "named arrays" if contents.names else "arrays (a list)"
    print(f"converted {len(contents.arrays)} {kind}, {size} bytes of data, from {args.input} "
          f"(MXNet NDArray file, headers {', '.join(contents.versions) or '-'}) "
          f"to {args.output}")
    return 0


def _graph_show(args) -> int:
    from mxcore import symbol
    from mxcore.graph.show import to_dot, to_text
    sym = symbol.load(args.file)
    shapes = {}
    for spec in args.shape or ():
        name, sep, dims = spec.partition("=")
        try:
            shapes[name] = tuple(int(d) for d in dims.split(",") if d)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise MXCoreError(f"--shape {spec!r}: expected NAME=D1,D2,... (e.g. data=1,3,224,224)")
    print(to_dot(sym, shapes) if args.dot else to_text(sym, shapes))
    return 0


def _train_mnist(args) -> int:
    from mxcore.recipes import mnist
    mnist.train(args)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``mxcore`` argument parser."""
    import hal
    from mxcore.recipes import mnist
    parser = _Parser(prog="mxcore", description="mxcore command line")
    _add_debug(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plugins", help="list plugins")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _add_debug(p)
    p.set_defaults(func=_plugins)
    p = sub.add_parser("devices", help="list device kinds")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _add_debug(p)
    p.set_defaults(func=_devices)
    p = sub.add_parser("kernels", help="list kernels, or explain a resolution")
    p.add_argument("action", nargs="?", choices=["list", "explain"], default="list",
                   help="list kernels, or explain which one serves a call")
    p.add_argument("op", nargs="?", help="operator (for explain)")
    p.add_argument("--op", dest="op_filter", metavar="OP",
                   help="list only this operator's kernels")
    p.add_argument("--device", type=device_spec,
                   help="device kind, e.g. cpu or cuda (list: all kinds; explain: cpu)")
    p.add_argument("--dtype", default="float32", choices=hal.ALL_DTYPES,
                   help="input dtype (explain)")
    p.add_argument("--shape", action="append", default=[], type=shape_spec,
                   help="an input's shape, e.g. 2,3; once per input (explain)")
    p.add_argument("--json", action="store_true", help="machine-readable output (list)")
    p.add_argument("--markdown", action="store_true",
                   help="every op's kernel call, attributes and kernels per device, as "
                        "markdown (docs/kernels.md is this, with MXCORE_NO_THIRD_PARTY=1)")
    _add_debug(p)
    p.set_defaults(func=_kernels)
    p = sub.add_parser("train", help="train a model")
    models = p.add_subparsers(dest="model", required=True)
    m = models.add_parser("mnist", help="the MNIST MLP (784-256-10)")
    mnist.add_arguments(m)
    _add_debug(m)
    m.set_defaults(func=_train_mnist)
    p = sub.add_parser("demo", help="train a linear model with autograd")
    p.add_argument("--epochs", type=int_at_least(1), default=5, help="passes over the data")
    p.add_argument("--device", type=device_spec,
                   help="e.g. cpu, cuda:0 (default: MXCORE_DEVICE or cpu)")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="random seed")
    _add_debug(p)
    p.set_defaults(func=_demo)
    p = sub.add_parser("convert-params",
                       help="convert an MXNet 1.x parameter file to mxcore's format",
                       description="Read an MXNet 1.x binary NDArray file (mx.nd.save, "
                                   "Block.save_parameters, HybridBlock.export's -0000.params) "
                                   "and write its arrays as safetensors, atomically.")
    p.add_argument("input", help="the MXNet file (e.g. model-0000.params)")
    p.add_argument("output", help="the safetensors file to write")
    p.add_argument("--keep-prefixes", action="store_true",
                   help="keep the arg:/aux: name prefixes (load_parameters removes them)")
    _add_debug(p)
    p.set_defaults(func=_convert_params)
    p = sub.add_parser("graph", help="inspect symbol files")
    graph = p.add_subparsers(dest="graph_command", required=True)
    g = graph.add_parser("show", help="print a -symbol.json graph as text or Graphviz dot",
                         description="Print the nodes of an MXNet 1.x / mxcore symbol file "
                                     "with their ops, attributes and inputs; with --shape, "
                                     "each output's inferred shape and dtype.")
    g.add_argument("file", help="the symbol file (model-symbol.json)")
    g.add_argument("--dot", action="store_true", help="Graphviz dot instead of text")
    g.add_argument("--shape", action="append", metavar="NAME=D1,D2,...",
                   help="an input's shape, for shape inference (repeatable)")
    _add_debug(g)
    g.set_defaults(func=_graph_show)
    from mxcore.onnx.cli import add_parser as add_onnx_parser
    add_onnx_parser(sub, _add_debug, shape_spec)
    p = sub.add_parser("launch", help="run a script on N processes (MPI)",
                       description="Run `script.py args` (or `-m module args`) on N processes "
                                   "with this interpreter: under mpiexec (the dist_* kvstores "
                                   "reduce over its ranks), or as plain local processes. Every "
                                   "process sees MXCORE_RANK and MXCORE_WORLD_SIZE.")
    p.add_argument("-n", "--num-processes", type=int_at_least(1), required=True, dest="n")
    p.add_argument("--hostfile", default=None, help="MPI hostfile (one host per line)")
    p.add_argument("--launcher", choices=("mpi", "local"), default="mpi")
    p.add_argument("--timeout", type=finite_float(0.0), default=None, metavar="SECONDS",
                   help="stop the job after this long")
    p.add_argument("-m", dest="module", default=None, help="run a module (python -m)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="script.py args...")
    p.set_defaults(func=_launch)
    p = sub.add_parser("new-plugin", help="write a ready-to-install operator plugin package",
                       description="Write mxcore-NAME/: one operator (NAME_square_plus) with "
                                   "its rule, gradient, CPU kernel, tests and README, and the "
                                   "entry point that registers it; --device KIND adds a "
                                   "device kind on host memory.")
    p.add_argument("name", help="plugin name: a lower-case identifier")
    p.add_argument("--device", default=None, metavar="KIND", help="also add a device kind")
    p.add_argument("--output", default=None, help="folder to write (default: ./mxcore-NAME)")
    p.set_defaults(func=_new_plugin)
    p = sub.add_parser("export", help="write a trained MNIST model for deployment "
                                      "(symbol + params, int8, ONNX)",
                       description="Write OUTPUT-symbol.json and OUTPUT-0000.params (MXNet "
                                   "1.x files, safetensors) for a model trained by `mxcore "
                                   "train mnist`, optionally int8 quantized with calibration "
                                   "and as OUTPUT.onnx (docs/deploy.md).")
    p.add_argument("--model", choices=("mlp", "lenet"), default="mlp")
    p.add_argument("--hidden", type=int_at_least(1), default=256, help="the MLP's width")
    p.add_argument("--params", required=True, help="the parameters file the training wrote")
    p.add_argument("--output", required=True, help="prefix of the files to write")
    p.add_argument("--quantize", choices=("int8",), default=None)
    p.add_argument("--calib", default=None, metavar="DIR",
                   help="dataset folder whose training images calibrate the int8 ranges")
    p.add_argument("--calib-batches", type=int_at_least(1), default=10)
    p.add_argument("--calib-mode", choices=("naive", "entropy"), default="naive")
    p.add_argument("--onnx", action="store_true", help="also write OUTPUT.onnx")
    p.add_argument("--evaluate", action="store_true",
                   help="report test accuracy: float32, the exported model (and onnxruntime)")
    p.add_argument("--data-root", default=None,
                   help="dataset folder for --evaluate (default: --calib, else download)")
    p.add_argument("--dataset", choices=("mnist", "fashion-mnist"), default="mnist")
    p.set_defaults(func=_export)
    p = sub.add_parser("conformance", help="run mxcore's op table on a device (pytest)",
                       description="Run the conformance kit's core suite "
                                   "(mxcore.testing.core: every core op's forward in each "
                                   "dtype, shape rule and gradients) on DEVICE through "
                                   "pytest; arguments after -- go to pytest (-k, -x, -q...).")
    p.add_argument("--device", required=True, action="append", metavar="DEVICE",
                   help="a device kind or device (cpu, cuda, cuda:1); repeatable")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="-- then pytest arguments")
    p.set_defaults(func=_conformance)
    return parser


def _export(args) -> int:
    from mxcore.deploy import export
    report = export(args.model, args.params, args.output, hidden=args.hidden,
                    quantize=args.quantize, calib=args.calib or args.data_root,
                    calib_batches=args.calib_batches, calib_mode=args.calib_mode,
                    onnx=args.onnx, evaluate=args.evaluate, dataset=args.dataset)
    for path in report["files"]:
        print(f"wrote {path}")
    for name, acc in report.get("accuracy", {}).items():
        print(f"test accuracy {name}: {acc:.4f}")
    return 0


def _conformance(args) -> int:
    import subprocess
    extra = args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else list(args.pytest_args)
    # a child process: pytest's own exit codes, output and plugin loading, as a user runs it
    cmd = [sys.executable, "-m", "pytest", "--pyargs", "mxcore.testing.core", "-p",
           "no:cacheprovider", *[f"--mxcore-device={d}" for d in args.device], *extra]
    return subprocess.call(cmd)


def _new_plugin(args) -> int:
    from mxcore.scaffold import new_plugin
    folder = new_plugin(args.name, args.output, args.device)
    print(f"wrote {folder}; install it with: pip install -e {folder}[test]")
    return 0


def _launch(args) -> int:
    from mxcore.launch import launch
    command = args.command[1:] if args.command[:1] == ["--"] else list(args.command)
    if args.module is not None:
        command = ["-m", args.module, *command]
    return launch(args.n, command, args.hostfile, args.launcher, args.timeout)


def _debug_wanted(argv: List[str]) -> bool:
    # from the raw arguments too: an error while building the parser comes first
    return "--debug" in argv or os.environ.get("MXCORE_DEBUG", "") not in ("", "0")


def _say(message: str) -> None:
    try:
        print(message, file=sys.stderr)
    except (OSError, ValueError):
        pass  # stderr is gone too: the exit code must do


def _quiet_stdout() -> None:
    """Point file descriptor 1 at /dev/null, so that the interpreter's last flush of the
    closed pipe raises nothing at exit (Python's documented way for SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # stdout is not a real file (captured in tests): nothing will flush to it


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line; returns the exit code (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = _debug_wanted(argv)
    try:
        args = build_parser().parse_args(argv)
        debug = debug or bool(getattr(args, "debug", False))
        if args.command == "kernels":
            args.op = args.op or args.op_filter
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers below
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        _say("mxcore: interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        from hal import DeviceUnavailableError
        if debug:
            traceback.print_exc()
        recipe = sys.modules.get("mxcore.recipes.mnist")  # loaded if it raised
        if recipe is not None and isinstance(exc, recipe.TrainingDivergedError):
            _say(f"mxcore: error: {exc}")
            return EXIT_NON_FINITE
        if isinstance(exc, (MXCoreError, DeviceUnavailableError, OSError)):
            _say(f"mxcore: error: {exc}")
            return EXIT_USAGE
        hint = "" if debug else " (rerun with --debug for the traceback)"
        _say(f"mxcore: internal error: {type(exc).__name__}: {exc}{hint}")
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
