"""AMP's operator lists: which operators run in the low-precision type, which in float32,
which in the widest type of their inputs, and which in float32 under a condition.

They are MXNet 1.9.1's lists (``mxnet.contrib.amp.lists.symbol_fp16`` and
``symbol_bf16``), by MXNet operator name, restricted to the operators mxcore provides.
Where mxcore departs from them it says so here:

* ``dot`` and ``batch_dot`` run in the low-precision type (MXNet 1.9.1 runs them in the
  widest type of their inputs): they are matrix products, like FullyConnected.
* ``Concat`` runs in the widest type of its inputs under bfloat16 too (MXNet 1.9.1 runs
  it in either precision there, which fails on mixed inputs).
* ``BatchNorm`` runs in float32 with float32 parameters and statistics (MXNet feeds it
  16-bit data with float32 parameters; mxcore's BatchNorm takes one dtype for all its
  inputs, so the data is cast up instead).
* mxcore's own names of listed operators (``fully_connected``, ``softmax_ce_loss``...)
  are listed with them (``MXCORE_NAMES``).
"""
from __future__ import annotations

from typing import Dict, NamedTuple, Tuple

#: float16 (MXNet's symbol_fp16), low precision
_FP16_LP16: Tuple[str, ...] = (
    "Convolution", "Deconvolution", "FullyConnected", "RNN", "dot", "batch_dot",
)


#: either precision: the type of their input
_FP16_LP16_FP32: Tuple[str, ...] = (
    "BilinearSampler", "BlockGrad", "Cast", "cast", "cast_storage", "Crop", "Dropout",
    "Embedding", "Flatten", "GridGenerator", "Pad", "Pooling", "ROIPooling", "Reshape",
    "SequenceLast", "SequenceMask", "SequenceReverse", "SliceChannel", "SpatialTransformer",
    "SwapAxis", "UpSampling", "_contrib_AdaptiveAvgPooling2D", "_contrib_BilinearResize2D",
    "_contrib_bipartite_matching", "_contrib_div_sqrt_dim", "_contrib_boolean_mask",
    "_contrib_gradientmultiplier", "_contrib_index_array", "_contrib_index_copy",
    "_contrib_quadratic", "_image_crop", "_copy", "_div_scalar", "_equal_scalar", "_full",
    "_greater_scalar", "_greater_equal_scalar", "_identity_with_attr_like_rhs",
    "_image_flip_left_right", "_image_flip_top_bottom", "_image_normalize",
    "_image_random_flip_left_right", "_image_random_flip_top_bottom", "_image_to_tensor",
    "_lesser_scalar", "_lesser_equal_scalar", "_logical_and_scalar", "_logical_or_scalar",
    "_logical_xor_scalar", "_maximum_scalar", "_minimum_scalar", "_minus_scalar",
    "_mod_scalar", "_mul_scalar", "_not_equal_scalar", "_ones", "_plus_scalar",
    "_random_exponential", "_random_exponential_like", "_random_gamma",
    "_random_gamma_like", "_random_generalized_negative_binomial",
    "_random_generalized_negative_binomial_like", "_random_negative_binomial",
    "_random_negative_binomial_like", "_random_normal", "_random_normal_like",
    "_random_poisson", "_random_poisson_like", "_random_randint", "_random_uniform",
    "_random_uniform_like", "_rminus_scalar", "_rmod_scalar", "_sample_exponential",
    "_sample_gamma", "_sample_generalized_negative_binomial", "_sample_multinomial",
    "_sample_negative_binomial", "_sample_normal", "_sample_poisson", "_sample_uniform",
    "_shuffle", "_zeros", "abs", "adam_update", "all_finite", "amp_cast", "arccosh",
    "arcsinh", "arctan", "argmax", "argmax_channel", "argmin", "batch_take",
    "broadcast_axes", "broadcast_axis", "broadcast_like", "broadcast_to", "cbrt", "ceil",
    "choose_element_0index", "clip", "cos", "crop", "degrees", "depth_to_space", "diag",
    "erf", "expand_dims", "fill_element_0index", "fix", "flatten", "flip", "floor",
    "ftml_update", "ftrl_update", "gather_nd", "hard_sigmoid", "identity", "logical_not",
    "max_axis", "max", "min", "min_axis", "multi_all_finite", "multi_sgd_mom_update",
    "multi_sgd_update", "negative", "normal", "one_hot", "ones_like", "pad", "pick",
    "radians", "random_exponential", "random_gamma", "random_generalized_negative_binomial",
    "random_negative_binomial", "random_normal", "random_poisson", "random_randint",
    "random_uniform", "ravel_multi_index", "relu", "repeat", "reshape", "reshape_like",
    "reverse", "rint", "rmsprop_update", "rmspropalex_update", "round",
    "sample_exponential", "sample_gamma", "sample_generalized_negative_binomial",
    "sample_multinomial", "sample_negative_binomial", "sample_normal", "sample_poisson",
    "sample_uniform", "scatter_nd", "sgd_mom_update", "sgd_update", "shape_array",
    "shuffle", "sigmoid", "sign", "signsgd_update", "signum_update", "sin", "size_array",
    "slice", "slice_axis", "slice_like", "softsign", "sort", "space_to_depth", "split",
    "sqrt", "squeeze", "stop_gradient", "swapaxes", "take", "tanh", "tile", "transpose",
    "trunc", "uniform", "unravel_index", "zeros_like",
)


#: float32
_FP16_FP32: Tuple[str, ...] = (
    "arccos", "arcsin", "cosh", "erfinv", "sinh", "tan", "arctanh", "exp", "expm1", "log",
    "log10", "log2", "log1p", "broadcast_power", "square", "reciprocal", "_rdiv_scalar",
    "rsqrt", "rcbrt", "_Power", "_power", "_power_scalar", "_rpower_scalar",
    "linalg_sumlogdiag", "_hypot_scalar", "broadcast_hypot", "sum", "sum_axis", "nansum",
    "prod", "nanprod", "mean", "norm", "softmin", "moments", "gamma", "gammaln",
    "_linalg_gelqf", "_linalg_gemm", "_linalg_gemm2", "_linalg_potrf", "_linalg_potri",
    "_linalg_sumlogdiag", "_linalg_syevd", "_linalg_syrk", "_linalg_trmm", "_linalg_trsm",
    "_linalg_makediag", "_linalg_extractdiag", "_linalg_maketrian", "_linalg_extracttrian",
    "_linalg_inverse", "_linalg_det", "_linalg_slogdet", "linalg_syrk", "linalg_potrf",
    "linalg_potri", "linalg_gemm2", "linalg_gemm", "linalg_gelqf", "linalg_trmm",
    "linalg_trsm", "linalg_makediag", "linalg_extractdiag", "linalg_maketrian",
    "linalg_extracttrian", "linalg_inverse", "linalg_det", "linalg_slogdet",
    "_contrib_SyncBatchNorm", "argsort", "topk", "SoftmaxOutput", "softmax", "Softmax",
    "log_softmax", "InstanceNorm", "LayerNorm", "GroupNorm", "L2Normalization", "LRN",
    "SoftmaxActivation", "LinearRegressionOutput", "LogisticRegressionOutput",
    "MAERegressionOutput", "SVMOutput", "softmax_cross_entropy", "smooth_l1", "MakeLoss",
    "make_loss", "Custom", "CTCLoss", "_contrib_CTCLoss", "_contrib_ctc_loss", "ctc_loss",
    "BatchNorm", "BatchNorm_v1",
)


#: the widest float type of their inputs (amp_multicast)
_FP16_WIDEST: Tuple[str, ...] = (
    "_Plus", "_plus", "_Minus", "_Mul", "_Div", "_div", "_equal", "_greater",
    "_greater_equal", "_lesser", "_lesser_equal", "_maximum", "_minimum", "_minus", "_mod",
    "_mul", "_not_equal", "Concat", "concat", "Correlation", "ElementWiseSum", "add_n",
    "broadcast_add", "broadcast_plus", "broadcast_div", "broadcast_equal",
    "broadcast_greater", "broadcast_greater_equal", "broadcast_lesser",
    "broadcast_lesser_equal", "broadcast_logical_and", "broadcast_logical_or",
    "broadcast_logical_xor", "broadcast_maximum", "broadcast_minimum", "broadcast_minus",
    "broadcast_mod", "broadcast_mul", "broadcast_not_equal", "broadcast_sub",
    "elemwise_add", "elemwise_div", "elemwise_mul", "elemwise_sub", "stack",
    "_contrib_ROIAlign", "_contrib_box_iou", "_contrib_box_nms",
    "_contrib_box_non_maximum_suppression", "_contrib_interleaved_matmul_encdec_qk",
    "_contrib_interleaved_matmul_encdec_valatt", "_contrib_interleaved_matmul_selfatt_qk",
    "_contrib_interleaved_matmul_selfatt_valatt", "where", "random_pdf_gamma",
    "random_pdf_exponential", "random_pdf_uniform", "random_pdf_negative_binomial",
    "random_pdf_generalized_negative_binomial", "random_pdf_dirichlet", "random_pdf_normal",
    "random_pdf_poisson", "_random_pdf_gamma", "_random_pdf_exponential",
    "_random_pdf_uniform", "_random_pdf_negative_binomial",
    "_random_pdf_generalized_negative_binomial", "_random_pdf_dirichlet",
    "_random_pdf_normal", "_random_pdf_poisson",
)


#: bfloat16 (MXNet's symbol_bf16), as for float16
_BF16_LP16: Tuple[str, ...] = (
    "Convolution", "FullyConnected", "dot", "batch_dot",
)


_BF16_LP16_FP32: Tuple[str, ...] = (
    "abs", "clip", "LRN", "Pooling", "relu", "shuffle", "_shuffle", "sqrt", "square", "tanh",
)


_BF16_FP32: Tuple[str, ...] = (
    "Deconvolution", "RNN", "BatchNorm_v1", "BilinearSampler", "BlockGrad", "Cast", "cast",
    "cast_storage", "Crop", "Dropout", "Embedding", "Flatten", "GridGenerator", "Pad",
    "ROIPooling", "Reshape", "SequenceLast", "SequenceMask", "SequenceReverse",
    "SliceChannel", "SpatialTransformer", "SwapAxis", "UpSampling",
    "_contrib_AdaptiveAvgPooling2D", "_contrib_BilinearResize2D",
    "_contrib_bipartite_matching", "_contrib_div_sqrt_dim", "_contrib_boolean_mask",
    "_contrib_gradientmultiplier", "_contrib_index_array", "_contrib_index_copy",
    "_contrib_quadratic", "_image_crop", "_copy", "_div_scalar", "_equal_scalar", "_full",
    "_greater_scalar", "_greater_equal_scalar", "_identity_with_attr_like_rhs",
    "_image_flip_left_right", "_image_flip_top_bottom", "_image_normalize",
    "_image_random_flip_left_right", "_image_random_flip_top_bottom", "_image_to_tensor",
    "_lesser_scalar", "_lesser_equal_scalar", "_logical_and_scalar", "_logical_or_scalar",
    "_logical_xor_scalar", "_maximum_scalar", "_minimum_scalar", "_minus_scalar",
    "_mod_scalar", "_mul_scalar", "_not_equal_scalar", "_ones", "_plus_scalar",
    "_random_exponential", "_random_exponential_like", "_random_gamma",
    "_random_gamma_like", "_random_generalized_negative_binomial",
    "_random_generalized_negative_binomial_like", "_random_negative_binomial",
    "_random_negative_binomial_like", "_random_normal", "_random_normal_like",
    "_random_poisson", "_random_poisson_like", "_random_randint", "_random_uniform",
    "_random_uniform_like", "_rminus_scalar", "_rmod_scalar", "_sample_exponential",
    "_sample_gamma", "_sample_generalized_negative_binomial", "_sample_multinomial",
    "_sample_negative_binomial", "_sample_normal", "_sample_poisson", "_sample_uniform",
    "_zeros", "adam_update", "all_finite", "arccosh", "arcsinh", "arctan", "argmax",
    "argmax_channel", "argmin", "batch_take", "broadcast_axes", "broadcast_axis",
    "broadcast_like", "broadcast_to", "cbrt", "ceil", "choose_element_0index", "cos",
    "crop", "degrees", "depth_to_space", "diag", "erf", "expand_dims",
    "fill_element_0index", "fix", "flatten", "flip", "floor", "ftml_update", "ftrl_update",
    "gather_nd", "hard_sigmoid", "identity", "logical_not", "max_axis", "max", "min",
    "min_axis", "multi_all_finite", "multi_sgd_mom_update", "multi_sgd_update", "negative",
    "normal", "one_hot", "ones_like", "pad", "pick", "radians", "random_exponential",
    "random_gamma", "random_generalized_negative_binomial", "random_negative_binomial",
    "random_normal", "random_poisson", "random_randint", "random_uniform",
    "ravel_multi_index", "repeat", "reshape", "reshape_like", "reverse", "rint",
    "rmsprop_update", "rmspropalex_update", "round", "sample_exponential", "sample_gamma",
    "sample_generalized_negative_binomial", "sample_multinomial",
    "sample_negative_binomial", "sample_normal", "sample_poisson", "sample_uniform",
    "scatter_nd", "sgd_mom_update", "sgd_update", "shape_array", "sigmoid", "sign",
    "signsgd_update", "signum_update", "sin", "size_array", "slice", "slice_axis",
    "slice_like", "softsign", "sort", "space_to_depth", "split", "squeeze", "stop_gradient",
    "swapaxes", "take", "tile", "transpose", "trunc", "uniform", "unravel_index",
    "zeros_like", "broadcast_mul", "arccos", "arcsin", "cosh", "erfinv", "sinh", "tan",
    "arctanh", "exp", "expm1", "log", "log10", "log2", "log1p", "broadcast_power",
    "reciprocal", "_rdiv_scalar", "rsqrt", "rcbrt", "_Power", "_power", "_power_scalar",
    "_rpower_scalar", "linalg_sumlogdiag", "_hypot_scalar", "broadcast_hypot", "sum",
    "sum_axis", "nansum", "prod", "nanprod", "mean", "norm", "softmin", "moments", "gamma",
    "gammaln", "_linalg_gelqf", "_linalg_gemm", "_linalg_gemm2", "_linalg_potrf",
    "_linalg_potri", "_linalg_sumlogdiag", "_linalg_syevd", "_linalg_syrk", "_linalg_trmm",
    "_linalg_trsm", "_linalg_makediag", "_linalg_extractdiag", "_linalg_maketrian",
    "_linalg_extracttrian", "_linalg_inverse", "_linalg_det", "_linalg_slogdet",
    "linalg_syrk", "linalg_potrf", "linalg_potri", "linalg_gemm2", "linalg_gemm",
    "linalg_gelqf", "linalg_trmm", "linalg_trsm", "linalg_makediag", "linalg_extractdiag",
    "linalg_maketrian", "linalg_extracttrian", "linalg_inverse", "linalg_det",
    "linalg_slogdet", "_contrib_SyncBatchNorm", "argsort", "topk", "SoftmaxOutput",
    "softmax", "Softmax", "log_softmax", "InstanceNorm", "LayerNorm", "GroupNorm",
    "L2Normalization", "SoftmaxActivation", "LinearRegressionOutput",
    "LogisticRegressionOutput", "MAERegressionOutput", "SVMOutput", "softmax_cross_entropy",
    "smooth_l1", "MakeLoss", "make_loss", "Custom", "CTCLoss", "_contrib_CTCLoss",
    "_contrib_ctc_loss", "ctc_loss", "BatchNorm",
)


_BF16_WIDEST: Tuple[str, ...] = (
    "Concat", "concat", "_Plus", "_plus", "_Minus", "_Mul", "_Div", "_div", "_equal", "_greater",
    "_greater_equal", "_lesser", "_lesser_equal", "_maximum", "_minimum", "_minus", "_mod",
    "_mul", "_not_equal", "Correlation", "ElementWiseSum", "add_n", "broadcast_add",
    "broadcast_plus", "broadcast_div", "broadcast_equal", "broadcast_greater",
    "broadcast_greater_equal", "broadcast_lesser", "broadcast_lesser_equal",
    "broadcast_logical_and", "broadcast_logical_or", "broadcast_logical_xor",
    "broadcast_maximum", "broadcast_minimum", "broadcast_minus", "broadcast_mod",
    "broadcast_not_equal", "broadcast_sub", "elemwise_add", "elemwise_div", "elemwise_mul",
    "elemwise_sub", "stack", "_contrib_ROIAlign", "_contrib_box_iou", "_contrib_box_nms",
    "_contrib_box_non_maximum_suppression", "where", "random_pdf_gamma",
    "random_pdf_exponential", "random_pdf_uniform", "random_pdf_negative_binomial",
    "random_pdf_generalized_negative_binomial", "random_pdf_dirichlet", "random_pdf_normal",
    "random_pdf_poisson", "_random_pdf_gamma", "_random_pdf_exponential",
    "_random_pdf_uniform", "_random_pdf_negative_binomial",
    "_random_pdf_generalized_negative_binomial", "_random_pdf_dirichlet",
    "_random_pdf_normal", "_random_pdf_poisson",
)



#: (operator, attribute, values): float32 when the attribute has one of the values
_CONDITIONAL_FP32: Tuple[Tuple[str, str, Tuple[str, ...]], ...] = (
    ("Activation", "act_type", ("softrelu",)),
    ("LeakyReLU", "act_type", ("elu", "selu")),
)

#: symbolic-training output layers whose gradient AMP scales by the loss scale
_LOSS_OUTPUT: Tuple[str, ...] = ("SoftmaxOutput", "LinearRegressionOutput",
                                 "LogisticRegressionOutput", "MAERegressionOutput")

#: mxcore's names of listed operators -> the MXNet name whose list they join
MXCORE_NAMES: Dict[str, str] = {
    "fully_connected": "FullyConnected", "convolution": "Convolution",
    "deconvolution": "Deconvolution", "rnn": "RNN", "matmul": "dot",
    "batch_norm": "BatchNorm", "layer_norm": "LayerNorm", "group_norm": "GroupNorm",
    "instance_norm": "InstanceNorm", "l2_normalization": "L2Normalization", "lrn": "LRN",
    "activation": "Activation", "leaky_relu_act": "LeakyReLU", "pooling": "Pooling",
    "upsampling": "UpSampling", "dropout": "Dropout", "embedding": "Embedding",
    "softmax_ce_loss": "softmax_cross_entropy",
}


class AmpLists(NamedTuple):
    """The lists for one target dtype."""
    lp16: Tuple[str, ...]
    lp16_fp32: Tuple[str, ...]
    fp32: Tuple[str, ...]
    widest: Tuple[str, ...]
    conditional_fp32: Tuple[Tuple[str, str, Tuple[str, ...]], ...]
    loss_output: Tuple[str, ...]


def _with_mxcore_names(names: Tuple[str, ...]) -> Tuple[str, ...]:
    listed = set(names)
    return names + tuple(n for n, mx_name in MXCORE_NAMES.items() if mx_name in listed)


def _conditional_with_mxcore_names(rows):
    return rows + tuple((n, attr, values) for n, mx_name in MXCORE_NAMES.items()
                        for op, attr, values in rows if op == mx_name)


def _lists(lp16, lp16_fp32, fp32, widest) -> AmpLists:
    return AmpLists(_with_mxcore_names(lp16), _with_mxcore_names(lp16_fp32),
                    _with_mxcore_names(fp32), _with_mxcore_names(widest),
                    _conditional_with_mxcore_names(_CONDITIONAL_FP32), _LOSS_OUTPUT)


#: target dtype name -> its lists
LISTS: Dict[str, AmpLists] = {
    "float16": _lists(_FP16_LP16, _FP16_LP16_FP32, _FP16_FP32, _FP16_WIDEST),
    "bfloat16": _lists(_BF16_LP16, _BF16_LP16_FP32, _BF16_FP32, _BF16_WIDEST),
}

TARGET_DTYPES: Tuple[str, ...] = tuple(LISTS)


def lists_for(target_dtype: str) -> AmpLists:
    """The lists of ``target_dtype`` (a name in ``TARGET_DTYPES``)."""
    return LISTS[target_dtype]

