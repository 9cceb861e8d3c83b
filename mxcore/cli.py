"""The ``mxcore`` command line.

    mxcore plugins [--json]                  plugins, their hooks, devices, counts, errors
    mxcore devices [--json]                  device kinds and their availability
    mxcore kernels [--op OP] [--device DEV] [--json]
    mxcore kernels explain OP --device cpu --dtype float32 --shape 2,3 --shape 3,4
    mxcore train mnist [--epochs N] ...      train the MNIST MLP (see --help)
    mxcore demo [--epochs N] [--device DEV]  train a linear model with autograd
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional


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


def _parse_shape(text: str):
    text = text.strip().strip("()")
    return tuple(int(p) for p in text.split(",") if p.strip()) if text else ()


def _kernels(args) -> int:
    from hal import parse_device
    from mxcore.plugins import registry
    from mxcore.registry import qualified
    reg = registry()
    if args.action == "explain":
        if not args.op:
            print("usage: mxcore kernels explain OP --device DEV --dtype DTYPE [--shape S ...]",
                  file=sys.stderr)
            return 2
        kind = parse_device(args.device or "cpu").kind
        shapes = tuple(_parse_shape(s) for s in args.shape) or None
        dtypes = (args.dtype,) * len(shapes) if shapes else None
        try:
            print(reg.explain(args.op, kind, args.dtype, shapes, dtypes, {}))
        except Exception as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    kind = parse_device(args.device).kind if args.device else None
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


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="mxcore", description="mxcore command line")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plugins", help="list plugins")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_plugins)
    p = sub.add_parser("devices", help="list device kinds")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_devices)
    p = sub.add_parser("kernels", help="list kernels, or explain a resolution")
    p.add_argument("action", nargs="?", choices=["list", "explain"], default="list")
    p.add_argument("op", nargs="?", help="operator (for explain)")
    p.add_argument("--op", dest="op_filter")
    p.add_argument("--device")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--shape", action="append", default=[], help="input shape, e.g. 2,3")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_kernels)
    p = sub.add_parser("train", help="train a model")
    models = p.add_subparsers(dest="model", required=True)
    from mxcore.recipes import mnist
    m = models.add_parser("mnist", help="the MNIST MLP (784-256-10)")
    mnist.add_arguments(m)
    m.set_defaults(func=lambda a: (mnist.train(a), 0)[1])
    p = sub.add_parser("demo", help="train a linear model with autograd")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--device")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    if args.command == "kernels":
        args.op = args.op or args.op_filter
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
