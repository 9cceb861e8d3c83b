"""Programs the distributed tests start on several ranks (``mpiexec -n N python -m
tests.distributed.scenarios NAME``).  Each rank writes its results as JSON to
``$SCENARIO_OUT/rank<R>.json`` (ranks share stdout, whose lines may interleave)."""
from __future__ import annotations

import json
import os
import signal
import sys

import numpy as np

import mxcore as mx
from mxcore import gluon
from mxcore.base import MXCoreError

nd = mx.nd


def report(**values) -> None:
    path = os.path.join(os.environ["SCENARIO_OUT"], f"rank{values['rank']}.json")
    with open(path, "w") as f:
        json.dump(values, f)


def semantics(kind: str = "dist_sync") -> None:
    """MXNet's documented push/pull examples, on every rank."""
    kv = mx.kv.create(kind)
    rank, n = kv.rank, kv.num_workers
    shape = (2, 3)
    kv.init(3, nd.ones(shape) * (2 + rank))          # rank 0's value wins
    a = nd.zeros(shape)
    kv.pull(3, out=a)
    after_init = a.asnumpy().tolist()
    kv.push(3, nd.ones(shape) * 8 * (rank + 1))       # summed over the ranks
    kv.pull(3, out=a)
    after_push = a.asnumpy().tolist()
    kv.init([5, 7], [nd.ones(shape), nd.ones(shape) * 2])
    kv.push([5, 7], [[nd.ones(shape) * rank, nd.ones(shape)], nd.ones(shape) * 3])
    b, c = nd.zeros(shape), nd.zeros(shape)
    kv.pull([5, 7], out=[b, c])
    out = nd.zeros(shape)
    kv.broadcast(9, nd.ones(shape) * (rank + 10), out)
    kv.set_optimizer(mx.optimizer.SGD(learning_rate=0.5))
    kv.push(3, nd.ones(shape))
    kv.pull(3, out=a)
    kv.barrier()
    report(rank=rank, num_workers=n, type=kv.type, after_init=after_init,
           after_push=after_push, list_push=[b.asnumpy().tolist(), c.asnumpy().tolist()],
           broadcast=out.asnumpy().tolist(), updated=a.asnumpy().tolist())


def _net(deferred: bool = False):
    mx.random.seed(rank_seed())
    net = gluon.nn.HybridSequential()
    if deferred:  # shapes (and values) come with the first forward
        net.add(gluon.nn.Dense(6, activation="relu"), gluon.nn.Dense(3))
    else:
        net.add(gluon.nn.Dense(6, activation="relu", in_units=5),
                gluon.nn.Dense(3, in_units=6))
    net.initialize(mx.init.Xavier())
    return net


def rank_seed() -> int:
    # a different seed per rank: the store's broadcast of rank 0's values must fix it
    return 1 + int(os.environ.get("PMI_RANK", "0"))


def batches(steps: int = 5, size: int = 8):
    rng = np.random.default_rng(0)
    return [(rng.standard_normal((size, 5)).astype(np.float32),
             rng.integers(0, 3, size).astype(np.float32)) for _ in range(steps)]


def train(kvstore: str = "dist_sync", update_on_kvstore="default", deferred="",
          reset="") -> None:
    """Data-parallel steps: each rank trains on its slice of every global batch (with
    ``reset``, every rank replaces a weight by an equal array after the second step)."""
    update_on_kvstore = {"default": None, "True": True, "False": False}[update_on_kvstore]
    net = _net(deferred == "deferred")
    trainer = gluon.Trainer(net.collect_params(), "sgd",
                            {"learning_rate": 0.1, "momentum": 0.9}, kvstore=kvstore,
                            update_on_kvstore=update_on_kvstore)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    kv = mx.kv.create(kvstore) if isinstance(kvstore, str) else kvstore
    rank, n = kv.rank, kv.num_workers
    for step, (x, y) in enumerate(batches()):
        if reset and step == 2:
            weight = next(iter(net.collect_params().values()))
            weight.set_data(weight.data().copy())
        part = slice(rank * len(x) // n, (rank + 1) * len(x) // n)
        with mx.autograd.record():
            loss = loss_fn(net(nd.array(x[part])), nd.array(y[part]))
        loss.backward()
        trainer.step(len(x))  # the global batch: gradients are summed over the ranks
    states = os.path.join(os.environ["SCENARIO_OUT"], "trainer.states")
    trainer.save_states(states)    # rank 0 writes; every rank then reads it back
    trainer.load_states(states)
    overlap = trainer._overlap
    report(rank=rank, params={k: v.data().asnumpy().tolist()
                              for k, v in net.collect_params().items()},
           files=sorted(os.listdir(os.environ["SCENARIO_OUT"])),
           buckets=len(overlap.buckets) if overlap else None,
           started_early=overlap.started_early if overlap else None)


def train_local(deferred: str = "") -> None:
    """The reference: one process on the whole batches."""
    os.environ["PMI_RANK"] = "0"
    net = _net(deferred == "deferred")
    trainer = gluon.Trainer(net.collect_params(), "sgd",
                            {"learning_rate": 0.1, "momentum": 0.9}, kvstore=None)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    for x, y in batches():
        with mx.autograd.record():
            loss = loss_fn(net(nd.array(x)), nd.array(y))
        loss.backward()
        trainer.step(len(x))
    report(rank=0, params={k: v.data().asnumpy().tolist()
                           for k, v in net.collect_params().items()})


def compressed(threshold: str = "0.5") -> None:
    """2-bit compressed pushes: each rank's values with their residuals, three times."""
    kv = mx.kv.create("dist_sync")
    kv.set_gradient_compression({"type": "2bit", "threshold": float(threshold)})
    shape = (3, 5)  # 15 values: not a multiple of the 4 codes a byte holds
    kv.init(0, nd.zeros(shape))
    rng = np.random.default_rng(kv.rank)
    pushes = [rng.uniform(-1, 1, shape).astype(np.float32) for _ in range(3)]
    pulled = []
    for v in pushes:
        kv.push(0, nd.array(v))
        out = nd.zeros(shape)
        kv.pull(0, out=out)
        pulled.append(out.asnumpy().tolist())
    report(rank=kv.rank, pushes=[p.tolist() for p in pushes], pulled=pulled,
           stats=kv.allreduce_stats())


def compressed_differ() -> None:
    kv = mx.kv.create("dist_sync")
    try:
        kv.set_gradient_compression({"type": "2bit", "threshold": 0.5 * (1 + kv.rank)})
        errors = []
    except MXCoreError as exc:
        errors = [str(exc)]
    report(rank=kv.rank, errors=errors)


def mismatch() -> None:
    kv = mx.kv.create("dist_sync")
    errors = []
    try:
        kv.init(0, nd.ones((2, 3 + kv.rank)))
    except MXCoreError as exc:
        errors.append(str(exc))
    try:  # rank 1 asks for another learning rate
        kv.set_optimizer(mx.optimizer.SGD(learning_rate=0.1 * (1 + kv.rank)))
    except MXCoreError as exc:
        errors.append(str(exc))
    report(rank=kv.rank, errors=errors)


def crash() -> None:
    kv = mx.kv.create("dist_sync")
    kv.init(0, nd.ones((4,)))
    if kv.rank == 1:
        raise RuntimeError("rank 1 broke down")
    kv.push(0, nd.ones((4,)))
    kv.pull(0, out=nd.zeros((4,)))
    report(rank=kv.rank, error="not reached")


def killed(kind: str = "dist_sync", victim: str = "1") -> None:
    kv = mx.kv.create(kind)
    kv.init(0, nd.ones((4,)))
    kv.set_optimizer(mx.optimizer.SGD(learning_rate=1.0))
    if kv.rank == int(victim):
        os.kill(os.getpid(), signal.SIGKILL)
    kv.push(0, nd.ones((4,)))
    kv.pull(0, out=nd.zeros((4,)))
    report(rank=kv.rank, error="not reached")


def hang() -> None:
    kv = mx.kv.create("dist_sync")
    kv.init(0, nd.ones((4,)))
    if kv.rank == 1:
        import time
        time.sleep(120)  # alive but never joins the push
    kv.push(0, nd.ones((4,)))
    report(rank=kv.rank, error="not reached")


def _wait_for(path: str, timeout: float = 60.0) -> None:
    """Wait (without touching any store) until another rank created ``path``."""
    import time
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear within {timeout} s")
        time.sleep(0.01)


def _mark(name: str) -> str:
    return os.path.join(os.environ["SCENARIO_OUT"], name)


def async_semantics() -> None:
    """dist_async: rank 0's init wins, a push needs the server's optimizer, rank 1 pushes
    and pulls while rank 0 does nothing with the store, then rank 0 pushes."""
    kv = mx.kv.create("dist_async")
    rank, n = kv.rank, kv.num_workers
    shape = (2, 3)
    kv.init(3, nd.ones(shape) * (2 + rank))
    a = nd.zeros(shape)
    kv.pull(3, out=a)
    after_init = a.asnumpy().tolist()
    try:
        kv.push(3, nd.ones(shape))
        errors = []
    except MXCoreError as exc:
        errors = [str(exc)]
    kv.set_optimizer(mx.optimizer.SGD(learning_rate=1.0))
    seen = []
    if rank != 0:  # the others go first, one after the other; rank 0 waits without a call
        if rank > 1:
            _wait_for(_mark(f"done{rank - 1}"))
        for _ in range(3):
            kv.pushpull(3, nd.ones(shape) * 2 ** rank, out=a)
            seen.append(a.asnumpy()[0, 0].item())
        open(_mark(f"done{rank}"), "w").close()
    else:
        if n > 1:
            _wait_for(_mark(f"done{n - 1}"))
        for _ in range(3):
            kv.pushpull(3, nd.ones(shape), out=a)
            seen.append(a.asnumpy()[0, 0].item())
    kv.barrier()
    kv.pull(3, out=a)
    report(rank=rank, num_workers=n, type=kv.type, after_init=after_init, errors=errors,
           seen=seen, final=a.asnumpy().tolist())


def async_train() -> None:
    """A Trainer on dist_async: rank 1 trains 5 steps, then rank 0 (which pulled nothing
    meanwhile, so its first gradient is taken at the initial weights) trains 5."""
    net = _net()
    trainer = gluon.Trainer(net.collect_params(), "sgd",
                            {"learning_rate": 0.1, "momentum": 0.9}, kvstore="dist_async")
    errors = []
    try:
        gluon.Trainer(net.collect_params(), "sgd", kvstore="dist_async",
                      update_on_kvstore=False)._init_kvstore()
    except ValueError as exc:
        errors.append(str(exc))
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    trainer._optimizer.rescale_grad = 1 / 8  # what every step sets (a batch of 8)
    trainer._prepare()  # the collective part: rank 0's weights and optimizer everywhere
    kv = trainer._kvstore
    rank = kv.rank
    if rank == 0:
        _wait_for(_mark("trained1"))
    for x, y in batches():
        part = slice(4, 8) if rank == 1 else slice(0, 4)
        with mx.autograd.record():
            loss = loss_fn(net(nd.array(x[part])), nd.array(y[part]))
        loss.backward()
        trainer.step(len(x))
    if rank == 1:
        open(_mark("trained1"), "w").close()
    kv.barrier()
    for p in net.collect_params().values():  # everyone takes the server's final weights
        kv.pull(trainer._param2idx[p.name], out=p.list_data())
    states = _mark("trainer.states")
    trainer.save_states(states)   # rank 0 writes the server's states
    trainer.load_states(states)   # and reads them back; the others wait for it
    report(rank=rank, type=kv.type, errors=errors, update_on_kvstore=trainer._update_on_kvstore,
           params={k: v.data().asnumpy().tolist() for k, v in net.collect_params().items()},
           files=sorted(os.listdir(os.environ["SCENARIO_OUT"])))


def async_train_reference() -> None:
    """async_train's order of updates in one process: rank 1's 5 steps, then rank 0's
    first gradient taken at the initial weights and applied to the current ones, then
    its other 4 steps."""
    os.environ["PMI_RANK"] = "0"
    net = _net()
    trainer = gluon.Trainer(net.collect_params(), "sgd",
                            {"learning_rate": 0.1, "momentum": 0.9}, kvstore=None)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    params = list(net.collect_params().values())
    initial = [p.data().copy() for p in params]
    for rank in (1, 0):
        for step, (x, y) in enumerate(batches()):
            part = slice(4, 8) if rank == 1 else slice(0, 4)
            stale = rank == 0 and step == 0
            if stale:
                current = [p.data().copy() for p in params]
                for p, w in zip(params, initial):
                    p.data()[:] = w
            with mx.autograd.record():
                loss = loss_fn(net(nd.array(x[part])), nd.array(y[part]))
            loss.backward()
            if stale:
                for p, w in zip(params, current):
                    p.data()[:] = w
            trainer.step(len(x))
    report(rank=0, params={k: v.data().asnumpy().tolist()
                           for k, v in net.collect_params().items()})


class _Picky(mx.optimizer.SGD):
    """SGD that refuses gradients above 100 (to make the server fail on purpose)."""

    def update(self, index, weight, grad, state):
        if np.abs(grad.asnumpy()).max() > 100:
            raise ValueError("gradient above 100")
        super().update(index, weight, grad, state)


def async_server_error() -> None:
    """An update that fails on the server is reported to every rank's next call."""
    kv = mx.kv.create("dist_async")
    kv.init(0, nd.zeros((4,)))
    kv.set_optimizer(_Picky(learning_rate=1.0))
    out = nd.zeros((4,))
    errors = []
    if kv.rank == 1:
        kv.push(0, nd.ones((4,)) * 1000)
        try:
            kv.pull(0, out=out)
        except MXCoreError as exc:
            errors.append(str(exc))
    kv.barrier()
    if kv.rank == 0:
        try:
            kv.pull(0, out=out)
        except MXCoreError as exc:
            errors.append(str(exc))
    report(rank=kv.rank, errors=errors)


if __name__ == "__main__":
    name, *args = sys.argv[1:]
    globals()[name.replace("-", "_")](*args)
