"""Calibration and the quantization graph pass as pure logic: the entropy threshold
search against a loop written from its definition and against known distributions,
histogram merging, min/max collection, and the rewrite's nodes, names, exclusions and
'smart' mode on MXNet-name graphs (nothing runs on a device)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from mxcore.contrib.quantization import calibration, rewrite
from mxcore.graph.ir import Node, from_json, to_json, topological


def _loop_divergences(hist, num_quantized_bins):
    """KL divergence per candidate, one candidate at a time, as the search defines it
    (MXNet 1.x's calibrate_entropy: p clipped to the window with the outside mass on its
    end bins, q the window merged into num_quantized_bins levels and spread over p's
    non-empty positions, both smoothed)."""
    def smooth(p, eps=0.0001):
        zeros = p == 0
        n_zeros, n_nonzeros = zeros.sum(), (~zeros).sum()
        if not n_nonzeros or eps * n_zeros / n_nonzeros >= 1:
            return None
        return p + eps * zeros - eps * n_zeros / n_nonzeros * (~zeros)

    zero = len(hist) // 2
    out = []
    for i in range(num_quantized_bins // 2, zero + 1):
        start, stop = zero - i, zero + i + 1
        sliced = np.zeros(stop - start)
        p = np.zeros(stop - start)
        for j in range(len(hist)):
            if j <= start:
                p[0] += hist[j]
            elif j >= stop:
                p[-1] += hist[j]
            else:
                sliced[j - start] = hist[j]
                p[j - start] = hist[j]
        merged = len(sliced) // num_quantized_bins
        qb = [sliced[j * merged:(j + 1) * merged].sum() for j in range(num_quantized_bins)]
        qb[-1] += sliced[num_quantized_bins * merged:].sum()
        q = np.zeros(len(sliced))
        for j in range(num_quantized_bins):
            lo = j * merged
            hi = len(q) if j == num_quantized_bins - 1 else (j + 1) * merged
            norm = np.count_nonzero(sliced[lo:hi])
            if norm:
                for k in range(lo, hi):
                    if p[k]:
                        q[k] = qb[j] / norm
        ps, qs = smooth(p), smooth(q)
        if ps is None or qs is None:
            out.append(math.inf)
            continue
        ps, qs = ps / ps.sum(), qs / qs.sum()
        out.append(float((ps * np.log(ps / qs)).sum()))
    return np.array(out)


@pytest.mark.parametrize("seed", [0, 1])
def test_entropy_search_matches_its_definition(seed):
    rng = np.random.default_rng(seed)
    data = np.concatenate([rng.standard_normal(20000), rng.standard_normal(30) * 8])
    th = np.abs(data).max()
    hist, edges = np.histogram(data, bins=301, range=(-th, th))
    want = _loop_divergences(hist.astype(np.float64), 31)
    got = calibration._divergences(hist.astype(np.float64), np.arange(15, 151), 31)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    lo, hi, threshold, div = calibration.optimal_threshold(
        (hist, edges, data.min(), data.max(), th), "int8", num_quantized_bins=31)
    best = int(np.argmin(want))
    assert threshold == pytest.approx(edges[150 + 15 + best + 1])
    assert div == pytest.approx(want[best])


def _threshold(data, dtype="int8", num_bins=2001):  # 8001 (the default): 16x the work
    collector = calibration.HistogramCollector(["x"], num_bins=num_bins)
    for chunk in np.array_split(data, 4):
        collector.collect("x", chunk)
    return collector.thresholds(dtype)["x"]


def test_entropy_threshold_of_known_distributions():
    rng = np.random.default_rng(7)
    gauss = rng.standard_normal(400000).astype(np.float32)
    lo, hi = _threshold(gauss)
    # a Gaussian keeps most of its tail (255 levels lose little there), never more
    assert lo == -hi and 3.0 < hi <= np.abs(gauss).max()
    # a uniform distribution keeps (almost) its whole range
    uniform = rng.uniform(-1, 1, 400000).astype(np.float32)
    assert 0.95 < _threshold(uniform)[1] <= 1.0 + 1e-6
    # a few huge outliers do not stretch the range as min/max would
    spiky = np.concatenate([np.float32([60.0, -45.0]), gauss])
    assert _threshold(spiky, num_bins=4001)[1] < 10
    # non-negative data quantized to uint8/auto: the range starts at 0
    relu = np.maximum(gauss, 0)
    assert _threshold(relu, "auto")[0] == 0.0
    assert _threshold(relu, "int8")[0] < 0


def test_combine_histogram_keeps_old_counts_in_their_bins():
    rng = np.random.default_rng(3)
    a, b = rng.uniform(-1, 1, 1000), rng.uniform(-3, 3, 1000)
    hist, edges = np.histogram(a, bins=101, range=(-1, 1))
    merged, medges, lo, hi, th = calibration.combine_histogram(
        (hist, edges, a.min(), a.max(), 1.0), b, b.min(), b.max(), np.abs(b).max())
    assert len(merged) % 2 == 1 and th >= np.abs(b).max()
    assert merged.sum() == 2000 and len(medges) == len(merged) + 1
    direct, _ = np.histogram(np.concatenate([a, b]), bins=len(merged), range=(-th, th))
    # same bins (old bins nest in the new ones): counts agree up to edge rounding
    assert np.abs(merged - direct).sum() <= 4
    same, _, _, _, th2 = calibration.combine_histogram((hist, edges, -1, 1, 1.0), a * 0.5,
                                                       -0.5, 0.5, 0.5)
    assert th2 == 1.0 and same.sum() == 2000


def test_rebin_merges_a_widened_histogram_around_zero():
    rng = np.random.default_rng(5)
    data = np.concatenate([rng.standard_normal(5000), [60.0]])
    hist, edges = np.histogram(data[:-1], bins=201, range=(-4, 4))
    wide = calibration.combine_histogram((hist, edges, -4, 4, 4.0), data[-1:], 60, 60, 60)
    assert len(wide[0]) > 1000
    merged, medges, lo, hi, th = calibration.rebin(wide, 201)
    assert len(merged) <= 201 and len(merged) % 2 == 1 and len(medges) == len(merged) + 1
    assert merged.sum() == wide[0].sum() and th >= wide[4] and (lo, hi) == (wide[2], wide[3])
    # the bin holding zero is the middle one, as before
    assert merged[len(merged) // 2] >= wide[0][len(wide[0]) // 2]
    assert calibration.rebin((hist, edges, -4, 4, 4.0), 201)[0] is hist


def test_naive_collector_tracks_extremes_of_watched_outputs_only():
    c = calibration.MinMaxCollector(["a"])
    c.collect("a", np.array([1.0, -2.0]))
    c.collect("a", np.array([3.0, 0.5]))
    c.collect("b", np.array([100.0]))
    assert c.thresholds("int8") == {"a": (-2.0, 3.0)}
    with pytest.raises(ValueError, match="unknown calibration mode 'best'"):
        calibration.make_collector("best", [])


# the rewrite -----------------------------------------------------------------------------
def _lenet_like():
    """data -> conv -> relu -> pool -> flatten -> fc -> relu -> fc (MXNet-name graph)."""
    v = lambda name: Node(None, name)  # noqa: E731
    conv = Node("Convolution", "conv0", {"kernel": (3, 3), "num_filter": 4, "no_bias": False},
                [(v("data"), 0), (v("conv0_weight"), 0), (v("conv0_bias"), 0)])
    relu = Node("Activation", "relu0", {"act_type": "relu"}, [(conv, 0)])
    pool = Node("Pooling", "pool0", {"kernel": (2, 2), "pool_type": "max", "stride": (2, 2)},
                [(relu, 0)])
    flat = Node("flatten", "flat0", {}, [(pool, 0)])
    fc1 = Node("FullyConnected", "fc1", {"num_hidden": 8, "no_bias": False},
               [(flat, 0), (v("fc1_weight"), 0), (v("fc1_bias"), 0)])
    relu1 = Node("Activation", "relu1", {"act_type": "relu"}, [(fc1, 0)])
    sig = Node("Activation", "sig1", {"act_type": "sigmoid"}, [(relu1, 0)])
    fc2 = Node("FullyConnected", "fc2", {"num_hidden": 3, "no_bias": True},
               [(sig, 0), (v("fc2_weight"), 0)])
    return [(fc2, 0)]


PARAMS = ["conv0_weight", "conv0_bias", "fc1_weight", "fc1_bias", "fc2_weight"]


def _ops(heads):
    return {n.name: n.op for n in topological(heads) if not n.is_variable}


def test_rewrite_full_mode_nodes_and_names():
    heads, calib = rewrite.quantize_symbol(_lenet_like(), offline_params=PARAMS,
                                           quantized_dtype="int8", quantize_mode="full")
    ops = _ops(heads)
    assert ops["data_quantize"] == "_contrib_quantize_v2"
    assert ops["quantized_conv0"] == "_contrib_quantized_conv"
    assert ops["requantize_conv0"] == "_contrib_requantize"
    assert ops["quantized_relu0"] == "_contrib_quantized_act"
    assert ops["quantized_pool0"] == "_contrib_quantized_pooling"
    assert ops["quantized_flat0"] == "_contrib_quantized_flatten"
    assert ops["relu1_dequantize"] == "_contrib_dequantize"  # before the float sigmoid
    assert ops["sig1"] == "Activation"
    assert ops["sig1_output_quantize"] == "_contrib_quantize_v2"
    assert ops["fc2_dequantize"] == "_contrib_dequantize"  # the graph's output
    variables = {n.name for n in topological(heads) if n.is_variable}
    assert {"conv0_weight_quantize", "conv0_weight_quantize_min", "fc1_bias_quantize_max",
            "fc2_weight_quantize"} <= variables
    assert not variables & set(PARAMS)  # every parameter is quantized offline
    fc2 = next(n for n in topological(heads) if n.name == "quantized_fc2")
    assert [s.name for s, _ in fc2.inputs] == [
        "sig1_output_quantize", "fc2_weight_quantize", "sig1_output_quantize",
        "sig1_output_quantize", "fc2_weight_quantize_min", "fc2_weight_quantize_max"]
    assert [i for _, i in fc2.inputs][:4] == [0, 0, 1, 2]
    assert calib == ["data", "conv0_output", "fc1_output", "sig1_output", "fc2_output"]
    # every calibrated name is what the quantize/requantize nodes look up
    keys = {rewrite.calib_key(n) for n in topological(heads)} - {None}
    assert keys == set(calib)


def test_rewrite_exclusions_and_smart_mode():
    heads, _ = rewrite.quantize_symbol(_lenet_like(), excluded_sym_names=["fc1"],
                                       offline_params=PARAMS, quantize_mode="full")
    ops = _ops(heads)
    assert ops["fc1"] == "FullyConnected" and "quantized_fc1" not in ops
    assert ops["flat0_dequantize"] == "_contrib_dequantize"
    heads, _ = rewrite.quantize_symbol(_lenet_like(), excluded_op_names=["Convolution"],
                                       offline_params=PARAMS, quantize_mode="full")
    ops = _ops(heads)
    assert ops["conv0"] == "Convolution" and "quantized_relu0" in ops
    # smart: relu/pool/flatten stay quantized only between quantized layers
    heads, _ = rewrite.quantize_symbol(_lenet_like(), offline_params=PARAMS,
                                       quantize_mode="smart")
    ops = _ops(heads)
    assert {"quantized_relu0", "quantized_pool0", "quantized_flat0"} <= set(ops)
    assert ops["relu1"] == "Activation"  # followed by a float op, not a quantized layer
    heads, _ = rewrite.quantize_symbol(_lenet_like(), excluded_op_names=["Convolution"],
                                       offline_params=PARAMS, quantize_mode="smart")
    ops = _ops(heads)
    assert ops["relu0"] == "Activation" and ops["pool0"] == "Pooling"
    with pytest.raises(ValueError, match="quantize_mode"):
        rewrite.quantize_symbol(_lenet_like(), quantize_mode="some")


def test_calibration_table_and_json_round_trip():
    heads, calib = rewrite.quantize_symbol(_lenet_like(), offline_params=PARAMS,
                                           quantized_dtype="auto", quantize_mode="full")
    table = {name: (-1.0 - k, 2.0 + k) for k, name in enumerate(calib)}
    table["data"] = (0.0, 1.0)
    calibrated = rewrite.set_calib_table(heads, table)
    loaded = from_json(to_json(calibrated))
    by_name = {n.name: n for n in topological(loaded)}
    assert by_name["data_quantize"].attrs["min_calib_range"] == 0.0
    assert by_name["requantize_conv0"].attrs["max_calib_range"] == 3.0
    assert by_name["requantize_fc2"].attrs["min_calib_range"] == -1.0 - calib.index("fc2_output")
    assert "min_calib_range" not in heads[0][0].inputs[0][0].attrs  # the input is untouched
    assert to_json(rewrite.set_calib_table(loaded, table)) == to_json(loaded)
