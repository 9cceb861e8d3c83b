"""Smoke test of the Triton kernels on the real cuda:0 at small shapes (run by
gpu_check.py with MXCORE_CUDA_TRITON_MIN_ELEMENTS=1 so the guards take them):
broadcast/scalar/comparison elementwise, reductions, layer norm, batched
products, fused Dense forward and backward, random and dropout, each against
the CPU device; DLPack exchange with CuPy and PyTorch without copies; empty_cache
returns the memory pool's unused blocks.  Prints SMOKE OK."""
import numpy as np, time
import mxcore as mx
from mxcore_cuda.triton._runtime import LAUNCHES
gpu, cpu = mx.gpu(0), mx.cpu()
rng = np.random.default_rng(0)
def both(a, dtype="float32"):
    return mx.nd.array(a, ctx=gpu, dtype=dtype), mx.nd.array(a, ctx=cpu, dtype=dtype)
def close(x, y, tol):
    np.testing.assert_allclose(x.asnumpy().astype(np.float64), y.asnumpy().astype(np.float64), rtol=tol, atol=tol)
t=time.time()
for dtype, tol in (("float32", 2e-5), ("float16", 2e-3), ("float64", 1e-12)):
    for sa, sb in (((4,3),(3,)), ((2,3,4),(3,1)), ((5,1),(1,6)), ((2,3,4,5,6),(6,)), ((3,4),(3,4))):
        (ga, ca), (gb, cb) = both(rng.uniform(0.5,2,sa), dtype), both(rng.uniform(0.5,2,sb), dtype)
        for name in ("add","subtract","multiply","divide","maximum","greater","less_equal","equal"):
            close(getattr(mx.nd,name)(ga,gb), getattr(mx.nd,name)(ca,cb), tol)
            close(getattr(mx.nd,name)(gb,ga), getattr(mx.nd,name)(cb,ca), tol)
    g, c = both(rng.uniform(-2,2,(4,5)), dtype)
    gq, cq = both(rng.uniform(-2,2,(5,5)), dtype); close(gq.T + gq, cq.T + cq, tol); close(gq.T * gq[1:2], cq.T * cq[1:2], tol)
    for s in (2, 0.3, -1.5):
        for f in (lambda x: x + s, lambda x: s - x, lambda x: x * s, lambda x: x / s, lambda x: s / x, lambda x: x >= s, lambda x: mx.nd.maximum(x, s), lambda x: x < s):
            close(f(g), f(c), tol)
    for ax in (None, (1,), (0,1)):
        for kd in (False, True):
            for name in ("sum","mean","max","min"):
                r1 = getattr(mx.nd,name)(g, axis=ax, keepdims=kd); r2 = getattr(mx.nd,name)(c, axis=ax, keepdims=kd)
                assert r1.shape == r2.shape, (r1.shape, r2.shape)
                close(r1, r2, tol*10)
    big_g, big_c = both(rng.uniform(-1,1,(3, 5000)), dtype)
    for name in ("sum","mean","max","min"):
        close(getattr(mx.nd,name)(big_g), getattr(mx.nd,name)(big_c), tol*100)
    close(mx.nd.sum(g, axis=0), mx.nd.sum(c, axis=0), tol)
    x, ga_, be = rng.normal(size=(6, 33)), rng.normal(size=33), rng.normal(size=33)
    (gx,cx),(gg,cg),(gbb,cbb) = both(x,dtype), both(ga_,dtype), both(be,dtype)
    close(mx.nd.LayerNorm(gx,gg,gbb), mx.nd.LayerNorm(cx,cg,cbb), tol*5)
for dtype, tol in (("float32", 1e-4), ("float16", 2e-2)):
    (ga, ca), (gb, cb) = both(rng.normal(size=(3, 32, 48)), dtype), both(rng.normal(size=(3, 48, 16)), dtype)
    close(mx.nd.batch_dot(ga, gb), mx.nd.batch_dot(ca, cb), tol)
    close(mx.nd.matmul(ga, gb), mx.nd.matmul(ca, cb), tol)
    (ga, ca), (gb, cb) = both(rng.normal(size=(64, 48)), dtype), both(rng.normal(size=(48, 32)), dtype)
    close(mx.nd.dot(ga, gb), mx.nd.dot(ca, cb), tol)
# fused Dense: bias + activation epilogue, and the one-op backward (odd sizes: masked tiles)
for dtype, tol in (("float32", 1e-4), ("float16", 2e-2), ("bfloat16", 5e-2)):
    (gx, cx), (gw, cw), (gb, cb) = both(rng.normal(size=(37, 21)), dtype), both(rng.normal(size=(10, 21)) * 0.3, dtype), both(rng.normal(size=10), dtype)
    for act in (None, "relu", "sigmoid", "tanh", "softrelu", "softsign"):
        for v in (gx, gw, gb, cx, cw, cb):
            v.attach_grad()
        with mx.autograd.record():
            yg = mx.nd.FullyConnected(gx, gw, gb, act_type=act); yc = mx.nd.FullyConnected(cx, cw, cb, act_type=act)
        yg.backward(yg * 0 + 0.5); yc.backward(yc * 0 + 0.5)
        for u, v in ((yg, yc), (gx.grad, cx.grad), (gw.grad, cw.grad), (gb.grad, cb.grad)):
            close(u, v, tol)
assert LAUNCHES["matmul.fully_connected"] >= 18 and LAUNCHES["matmul.fully_connected_backward"] >= 18
mx.random.seed(5); u1 = mx.nd.random.uniform(-1, 3, shape=(60, 50), ctx=gpu).asnumpy()
mx.random.seed(5); u2 = mx.nd.random.uniform(-1, 3, shape=(60, 50), ctx=gpu).asnumpy()
u3 = mx.nd.random.uniform(-1, 3, shape=(60, 50), ctx=gpu).asnumpy()
assert (u1 == u2).all() and not (u1 == u3).all()
print(u1.mean(), u1.var(), 16/12, u1.min(), u1.max())
n = mx.nd.random.normal(1, 2, shape=(4000,), ctx=gpu).asnumpy(); print(n.mean(), n.var())
with mx.autograd.record():
    d = mx.nd.Dropout(mx.nd.ones((50, 40), ctx=gpu), p=0.3).asnumpy()
print((d==0).mean(), np.unique(d))
# DLPack without copies on the device: CuPy and PyTorch (where installed) share memory
xp = mx.nd.zeros((1,), ctx=gpu)._data.__class__.__module__.split(".")[0]
if xp == "cupy":
    import cupy
    ptr = lambda a: a._data.data.ptr
    c = cupy.arange(12, dtype=cupy.float32).reshape(3, 4)
    m = mx.nd.from_dlpack(c)
    assert m.context == gpu and ptr(m) == c.data.ptr and m.shape == (3, 4)
    back = cupy.from_dlpack(m)
    assert back.data.ptr == c.data.ptr
    m[:] = 7  # writes land in the CuPy array: one buffer
    assert float(c.sum()) == 84.0
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None and torch.cuda.is_available():
        t = torch.from_dlpack(m)
        assert t.is_cuda and t.data_ptr() == c.data.ptr
        t2 = torch.ones(5, device="cuda")
        m2 = mx.nd.from_dlpack(t2)
        assert ptr(m2) == t2.data_ptr() and m2.context == gpu and m2.sum().asscalar() == 5
# empty_cache: the pool's unused blocks go back, live arrays keep their memory
from mxcore.device import device_type
keep = mx.nd.ones((1 << 20,), ctx=gpu); gone = mx.nd.ones((1 << 22,), ctx=gpu); del gone
before = device_type(gpu).memory_stats(0); mx.context.empty_cache(gpu); after = device_type(gpu).memory_stats(0)
if "pool_total_bytes" in before:  # a real GPU (the interpreted device has no pool)
    assert after["pool_total_bytes"] < before["pool_total_bytes"] and after["pool_used_bytes"] >= 4 << 20, (before, after)
assert keep.sum().asscalar() == 1 << 20
print(round(time.time() - t, 2), dict(LAUNCHES))
print("SMOKE OK")
