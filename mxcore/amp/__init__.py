"""``mx.amp`` (also ``mx.contrib.amp``): automatic mixed precision, MXNet 1.x's API.

``amp.init('float16' | 'bfloat16')`` before building the model makes matrix products
and convolutions run in the 16-bit type and numerically sensitive operators in
float32, with float32 parameters; ``amp.init_trainer(trainer)`` and
``amp.scale_loss(loss, trainer)`` add dynamic loss scaling; ``convert_model`` and
``convert_hybrid_block`` convert a trained float32 model for inference.
See docs/amp.md.
"""
from mxcore.amp import lists
from mxcore.amp.amp import (_reset, init, init_trainer, list_conditional_fp32_ops,
                            list_fp32_ops, list_loss_output_functions, list_lp16_fp32_ops,
                            list_lp16_ops, list_lp16_use_fp32_params, list_widest_type_cast,
                            scale_loss, unscale)
from mxcore.amp.convert import convert_hybrid_block, convert_model, convert_symbol
from mxcore.amp.loss_scaler import LossScaler

__all__ = ["init", "init_trainer", "scale_loss", "unscale", "convert_model",
           "convert_hybrid_block", "convert_symbol", "list_lp16_ops", "list_fp32_ops",
           "list_lp16_fp32_ops", "list_conditional_fp32_ops", "list_widest_type_cast",
           "list_loss_output_functions", "list_lp16_use_fp32_params", "LossScaler", "lists"]
