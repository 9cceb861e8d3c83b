"""The dist_sync kvstore on 2 and 4 MPI ranks (``mxcore launch``), each job a subprocess
with a timeout: MXNet's push/pull semantics, data-parallel training equal to one process
on the whole batch, disagreements reported at init, and a failing or killed rank ending
the job with an error that names it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytest.importorskip("mpi4py", reason="the dist kvstores need mpi4py: pip install 'mxcore[dist]'")


def _job(tmp_path, n, scenario, *args, launcher="mpi", timeout=120, collective_timeout=20,
         env_vars=None):
    """Run a scenario on ``n`` ranks: (completed process, {rank: results})."""
    out = tmp_path / scenario
    out.mkdir(exist_ok=True)
    env = {**os.environ, **(env_vars or {}), "SCENARIO_OUT": str(out),
           "MXCORE_DIST_TIMEOUT": str(collective_timeout),
           "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("MXCORE_ENGINE_WORKERS", None)
    r = subprocess.run([sys.executable, "-m", "mxcore", "launch", "-n", str(n), "--launcher",
                        launcher, "-m", "tests.distributed.scenarios", scenario, *args],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    results = {}
    for path in out.glob("rank*.json"):
        d = json.loads(path.read_text())
        results[d["rank"]] = d
    return r, results


@pytest.mark.parametrize("n,kind", [(2, "dist_sync"), (4, "dist_sync"),
                                    (2, "dist_device_sync")])
def test_push_pull_and_broadcast_follow_mxnet(tmp_path, n, kind):
    r, res = _job(tmp_path, n, "semantics", kind)
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(res) == list(range(n))
    ones = np.ones((2, 3))
    for rank, d in res.items():
        assert d["num_workers"] == n and d["type"] == kind
        np.testing.assert_array_equal(d["after_init"], 2 * ones)        # rank 0's value
        np.testing.assert_array_equal(d["after_push"], 8 * sum(range(1, n + 1)) * ones)
        # key 5: each rank pushes two device values (rank, 1); key 7: 3 from each rank
        np.testing.assert_array_equal(d["list_push"][0], sum(r + 1 for r in range(n)) * ones)
        np.testing.assert_array_equal(d["list_push"][1], 3 * n * ones)
        np.testing.assert_array_equal(d["broadcast"], 10 * ones)        # rank 0's value
        # SGD on the store: the pushed ones summed over n ranks, lr 0.5
        np.testing.assert_allclose(d["updated"], (8 * sum(range(1, n + 1)) - 0.5 * n) * ones)


@pytest.mark.parametrize("n", [1, 2, 4])
def test_dist_async_applies_each_push_as_it_arrives(tmp_path, n):
    # ranks 1..n-1 push and pull in turn while rank 0 makes no store call at all (a
    # synchronous store would hang here), then rank 0 pushes
    r, res = _job(tmp_path, n, "async_semantics")
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(res) == list(range(n))
    value = 2.0  # rank 0's init; SGD with learning rate 1 subtracts each push
    expected_seen = {}
    for rank in list(range(1, n)) + [0]:
        pushed = 2.0 ** rank
        expected_seen[rank] = [value - pushed * (i + 1) for i in range(3)]
        value -= 3 * pushed
    for rank, d in res.items():
        assert d["type"] == "dist_async" and d["num_workers"] == n
        np.testing.assert_array_equal(d["after_init"], 2 * np.ones((2, 3)))
        assert len(d["errors"]) == 1 and "none is set (call set_optimizer" in d["errors"][0]
        assert d["seen"] == expected_seen[rank], rank   # each pull sees its own push
        np.testing.assert_array_equal(d["final"], value * np.ones((2, 3)))


def test_dist_async_trainer_follows_the_order_the_server_applied_pushes_in(tmp_path):
    # rank 1 trains 5 steps, then rank 0 trains 5: its first gradient comes from the
    # initial weights (it pulled nothing meanwhile) and updates rank 1's result
    r, res = _job(tmp_path, 2, "async_train")
    assert r.returncode == 0, r.stderr[-3000:]
    ref_run, ref = _job(tmp_path, 1, "async_train_reference")
    assert ref_run.returncode == 0, ref_run.stderr[-3000:]
    want = ref[0]["params"]
    for rank in (0, 1):
        d = res[rank]
        assert d["update_on_kvstore"] is True
        assert d["errors"] == ["Please set update_on_kvstore=True when training in async mode."]
        for name in want:
            np.testing.assert_allclose(d["params"][name], want[name], rtol=1e-6, atol=1e-7,
                                       err_msg=f"rank {rank} {name}")
    assert "trainer.states" in res[0]["files"]   # rank 0 saved the server's states


def test_dist_async_update_failing_on_the_server_is_reported_to_every_rank(tmp_path):
    r, res = _job(tmp_path, 2, "async_server_error")
    assert r.returncode == 0, r.stderr[-3000:]
    cause = "applying the push of key(s) [0] from rank 1: ValueError: gradient above 100"
    assert res[1]["errors"] == [f"KVStore.pull on rank 1: the server (rank 0) failed: {cause}"]
    assert res[0]["errors"] == [f"KVStore on rank 0: the server failed: {cause}"]


@pytest.mark.parametrize("update_on_kvstore,deferred", [("default", ""), ("False", ""),
                                                      ("default", "deferred")])
def test_data_parallel_training_equals_one_process_on_the_whole_batch(tmp_path,
                                                                      update_on_kvstore,
                                                                      deferred):
    # ranks initialise from different seeds; with deferred shapes the values come in the
    # first forward, and every rank must take rank 0's before that forward uses them
    r, res = _job(tmp_path, 2, "train", "dist_sync", update_on_kvstore, deferred)
    assert r.returncode == 0, r.stderr[-3000:]
    ref_run, ref = _job(tmp_path, 1, "train_local", deferred)
    assert ref_run.returncode == 0, ref_run.stderr[-3000:]
    want = ref[0]["params"]
    # the Trainer's states were saved by rank 0 alone, read back by both
    assert "trainer.states" in res[0]["files"]
    for rank in (0, 1):
        got = res[rank]["params"]
        assert set(got) == set(want)
        for name in want:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-6,
                                       err_msg=f"rank {rank} {name}")


@pytest.mark.parametrize("update_on_kvstore,reset", [("default", ""), ("False", ""),
                                                    ("False", "reset")])
def test_gradients_reduced_while_backward_runs_give_the_same_training(tmp_path,
                                                                       update_on_kvstore,
                                                                       reset):
    # one bucket per gradient (a tiny bucket size): the buckets of the second layer start
    # while the first layer is differentiated; MXCORE_DIST_OVERLAP=0 reduces at step only
    tiny = {"MXCORE_DIST_BUCKET_MB": "0.00001"}
    r, res = _job(tmp_path, 2, "train", "dist_sync", update_on_kvstore, "", reset,
                  env_vars=tiny)
    assert r.returncode == 0, r.stderr[-3000:]
    (tmp_path / "off").mkdir()
    off_run, off = _job(tmp_path / "off", 2, "train", "dist_sync", update_on_kvstore, "",
                        reset, env_vars={**tiny, "MXCORE_DIST_OVERLAP": "0"})
    assert off_run.returncode == 0, off_run.stderr[-3000:]
    for rank in (0, 1):
        assert res[rank]["buckets"] == 4          # two Dense layers: weight and bias each
        # every bucket of the 5 steps started during backward (the last one with the
        # first layer's bias, the last gradient backward writes); a weight replaced before
        # the third step drops the hooks, that step reduces at its end and arms a new
        # reduction, which counts the last two steps
        assert res[rank]["started_early"] == 4 * (2 if reset else 5)
        assert off[rank]["started_early"] is None
        for name, want in off[rank]["params"].items():
            np.testing.assert_allclose(res[rank]["params"][name], want, rtol=1e-6, atol=1e-7,
                                       err_msg=f"rank {rank} {name}")


def test_2bit_compression_sums_every_ranks_codes_with_residuals(tmp_path):
    """MXNet's 2-bit compression across ranks: each rank's pushes add to its residual,
    +-t is sent where the residual reached it, and every rank gets the sum of the codes."""
    t = 0.5
    r, res = _job(tmp_path, 2, "compressed", str(t))
    assert r.returncode == 0, r.stderr[-3000:]
    residual = {rank: np.zeros((3, 5)) for rank in res}
    for step in range(3):
        total = np.zeros((3, 5))
        for rank, d in res.items():
            residual[rank] += np.asarray(d["pushes"][step])
            sent = np.where(residual[rank] >= t, t, np.where(residual[rank] <= -t, -t, 0.0))
            residual[rank] -= sent
            total += sent
        for rank, d in res.items():
            np.testing.assert_allclose(d["pulled"][step], total, err_msg=f"step {step}")
    assert any(np.any(np.asarray(d["pulled"][1]) != 0) for d in res.values())
    # 15 values -> 4 bytes of codes per push and rank
    assert all(d["stats"]["pushes"] == 3 and d["stats"]["bytes"] == 12 for d in res.values())


def test_ranks_that_disagree_on_compression_are_told(tmp_path):
    r, res = _job(tmp_path, 2, "compressed_differ")
    assert r.returncode == 0, r.stderr[-3000:]
    for d in res.values():
        assert len(d["errors"]) == 1 and "disagree on the compression parameters" in \
            d["errors"][0] and "rank 1 has" in d["errors"][0]


def test_ranks_that_disagree_on_shapes_or_optimizer_are_told(tmp_path):
    r, res = _job(tmp_path, 2, "mismatch")
    assert r.returncode == 0, r.stderr[-3000:]
    for rank in (0, 1):
        shapes, optimizer = res[rank]["errors"]
        assert "KVStore.init" in shapes and "rank 1 has" in shapes and "[2, 4]" in shapes
        assert "KVStore.set_optimizer" in optimizer and "rank 1 has" in optimizer
        assert "'lr': 0.2" in optimizer and "'lr': 0.1" in optimizer


@pytest.mark.parametrize("scenario,words", [("crash", "rank 1 of 2 raised an uncaught "
                                                      "RuntimeError"),
                                            ("killed", ""), ("killed dist_async 0", ""),
                                            ("killed dist_async 1", "")])
def test_a_failing_rank_ends_the_job_within_a_minute(tmp_path, scenario, words):
    # (dist_async with rank 0 killed: the server is gone while rank 1 pushes and pulls)
    start = time.monotonic()
    scenario, *args = scenario.split()
    victim = int(args[1]) if args else 1
    r, res = _job(tmp_path, 2, scenario, *args, timeout=90)
    took = time.monotonic() - start
    assert r.returncode != 0 and took < 60, (r.returncode, took)
    if args:  # dist_async: a rank does not wait for the others, only for the server
        assert victim not in res and (victim == 1 or not res)
    else:
        assert not res  # nobody got past the failed collective
    text = r.stdout + r.stderr
    assert words in text
    if scenario == "killed":  # the launcher names the rank that died and how
        assert f"mxcore launch: rank {victim} (pid" in r.stderr \
            and "killed by signal 9" in r.stderr, \
            text[-2000:]


def test_a_rank_that_hangs_times_the_others_out(tmp_path):
    start = time.monotonic()
    # a collective deadline well above what a loaded 2-core runner needs for kv.init
    r, res = _job(tmp_path, 2, "hang", timeout=90, collective_timeout=8)
    assert r.returncode != 0 and time.monotonic() - start < 60
    assert "rank 0 of 2: KVStore.push of 1 value(s)" in r.stderr
    assert "did not complete within 8 s" in r.stderr and not res


def test_local_launcher_sets_rank_variables_and_refuses_dist_stores(tmp_path):
    script = tmp_path / "ranks.py"
    script.write_text(
        "import os, sys\n"
        "out = sys.argv[1]\n"
        "open(os.path.join(out, 'r' + os.environ['MXCORE_RANK']), 'w').write(\n"
        "    os.environ['MXCORE_WORLD_SIZE'])\n"
        "import mxcore as mx\n"
        "try:\n"
        "    mx.kv.create('dist_sync')\n"
        "except mx.base.MXCoreError as exc:\n"
        "    open(os.path.join(out, 'e' + os.environ['MXCORE_RANK']), 'w').write(str(exc))\n")
    r = subprocess.run([sys.executable, "-m", "mxcore", "launch", "-n", "3", "--launcher",
                        "local", str(script), str(tmp_path)], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    for rank in range(3):
        assert (tmp_path / f"r{rank}").read_text() == "3"
        assert "need the processes started by MPI" in (tmp_path / f"e{rank}").read_text()


def test_launch_reports_bad_arguments(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mxcore", "launch", "-n", "2", "--hostfile",
                        str(tmp_path / "nope"), "x.py"], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0 and "hostfile" in r.stderr and "does not exist" in r.stderr


@pytest.mark.parametrize("kvstore", ["dist_sync", "dist_async"])
def test_mnist_recipe_trains_data_parallel_and_rank_0_saves(tmp_path, kvstore):
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "mxcore", "launch", "-n", "2", "-m", "mxcore",
                        "train", "mnist", "--kvstore", kvstore, "--data-root",
                        os.path.join(ROOT, "data", "mnist"), "--limit", "2000", "--epochs", "2", "--lr-schedule", "cosine",
                        "--output", str(out), "--no-progress"], cwd=ROOT, capture_output=True,
                       text=True, timeout=300,
                       env={**os.environ, "MXCORE_DIST_TIMEOUT": "60"})
    assert r.returncode == 0, r.stderr[-3000:]
    # rank 0 alone prints and saves
    assert r.stdout.count(f"x 2 ranks ({kvstore}): 2000 mnist images") == 1
    assert r.stdout.count("final test accuracy") == 1
    history = json.loads((out / "history.json").read_text())
    assert history["config"]["kvstore"] == kvstore
    assert history["history"]["test_acc"][-1] > 0.5
    # the cosine schedule spans the updates the optimizer gets (each rank's batch is
    # half the global one; on dist_async the server applies both ranks' steps): halfway
    # after the first epoch, 0 after the second
    lr = history["history"]["lr"]
    base = history["config"]["lr"]
    assert abs(lr[0] - base / 2) < 0.05 * base and lr[1] < 0.01 * base, lr
    assert sorted(p.name for p in out.iterdir()) == ["history.json", "mnist-mlp.safetensors"]


def test_compare_dist_straggler_runs_on_both_stores():
    """asv_bench/compare_dist.py's straggler experiment, tiny (a smoke test: the numbers
    are the script's to report, not this test's to judge)."""
    sys.path.insert(0, os.path.join(ROOT, "asv_bench"))
    try:
        import compare_dist
    finally:
        sys.path.pop(0)
    for kind in ("dist_sync", "dist_async"):
        seconds = compare_dist.straggler(kind, 1.0, 3)
        assert sorted(seconds) == [0, 1] and all(s > 0 for s in seconds.values()), seconds
