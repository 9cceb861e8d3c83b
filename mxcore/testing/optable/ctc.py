"""Op-table cases: the CTC loss (ctc_loss).  Imported by mxcore.testing.optable, which
collects every case into one table.

The reference enumerates every alignment path of tiny inputs (C ** T paths per row),
collapses each (merge repeats, then drop blanks) and adds up the probabilities of the
paths that spell the row's label: the definition of the CTC likelihood, sharing nothing
with the kernel's alpha-beta recursions.  As in MXNet 1.9.1, a label no path can spell
costs 0.  Gradients (first order; the op is differentiable once, as MXNet's) are checked
against finite differences.
"""
from __future__ import annotations

import itertools

import numpy as np

import mxcore as mx
from mxcore.testing.table import In, collector

CASES: list = []
case = collector(CASES)
nd = mx.nd


def _collapse(path, blank):
    merged = [k for i, k in enumerate(path) if i == 0 or k != path[i - 1]]
    return [k for k in merged if k != blank]


def _row_label(row, blank_label, length=None):
    row = [int(v) for v in row]
    if length is not None:
        return row[:int(length)]
    pad = 0 if blank_label == "first" else -1
    return row[:row.index(pad)] if pad in row else row


def _ctc_ref(x, label, blank_label="first", data_lengths=None, label_lengths=None):
    t_max, n, c = x.shape
    blank = 0 if blank_label == "first" else c - 1
    out = np.zeros(n)
    for i in range(n):
        steps = t_max if data_lengths is None else int(data_lengths[i])
        target = _row_label(label[i], blank_label,
                            None if label_lengths is None else label_lengths[i])
        e = np.exp(x[:steps, i] - x[:steps, i].max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        total = sum(np.prod([p[t, k] for t, k in enumerate(path)])
                    for path in itertools.product(range(c), repeat=steps)
                    if _collapse(path, blank) == target)
        out[i] = -np.log(total) if total > 0 else 0.0
    return out


def _fixed(values, like, dtype="float32"):
    return nd.array(np.array(values), ctx=like.context, dtype=dtype)


# blank first: 0 pads the rows; row 1 repeats a label, row 2 is empty
_LAB_FIRST = [[1, 2, 0], [2, 2, 0], [0, 0, 0]]
case("ctc_loss", lambda x: nd.ctc_loss(x, _fixed(_LAB_FIRST, x)),
     lambda x: _ctc_ref(x, _LAB_FIRST), (In((4, 3, 3)),), grad2=False)
# blank last: -1 pads, labels 0..C-2; int32 labels
_LAB_LAST = [[0, 1, -1], [2, -1, -1], [1, 1, 0]]
case("ctc_loss_blank_last", lambda x: nd.ctc_loss(x, _fixed(_LAB_LAST, x, "int32"),
                                                  blank_label="last"),
     lambda x: _ctc_ref(x, _LAB_LAST, "last"), (In((5, 3, 4)),), grad2=False)
# explicit lengths: row 0 ends at step 3 and keeps one label; row 1 needs 4 of its 5
# steps; row 2 (labels 1, 1 in 2 steps) cannot be spelled: cost 0, zero gradient
_LAB_LEN = [[1, 2, 2], [2, 1, 1], [1, 1, 2]]
_DATA_LEN, _LABEL_LEN = [3, 5, 2], [1, 3, 2]
case("ctc_loss_lengths",
     lambda x: nd.CTCLoss(x, _fixed(_LAB_LEN, x), _fixed(_DATA_LEN, x),
                          _fixed(_LABEL_LEN, x, "int64"), use_data_lengths=True,
                          use_label_lengths=True),
     lambda x: _ctc_ref(x, _LAB_LEN, "first", _DATA_LEN, _LABEL_LEN), (In((5, 3, 3)),),
     grad2=False)
# arrays the table draws: labels from the non-blank classes, data lengths in [0, 4]
case("ctc_loss_data_lengths_drawn",
     lambda x, label, lengths: nd.ctc_loss(x, label, lengths, use_data_lengths=True,
                                           blank_label="last"),
     lambda x, label, lengths: _ctc_ref(x, label, "last", lengths),
     (In((4, 2, 3)), In((2, 2), "index", "int32", False, 2),
      In((2,), "index", "int32", False, 5)),
     grad2=False)
