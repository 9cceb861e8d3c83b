"""``gluon.data``: datasets, samplers, the DataLoader and vision datasets.

MXNet names: ``Dataset``, ``SimpleDataset``, ``ArrayDataset``, the samplers
(``SequentialSampler``, ``RandomSampler``, ``BatchSampler``, ...), ``DataLoader``
and ``vision`` (``vision.MNIST``, ``vision.FashionMNIST``, ``vision.transforms``).
"""
from mxcore.gluon.data.dataset import ArrayDataset, Dataset, SimpleDataset
from mxcore.gluon.data.sampler import (BatchSampler, FilterSampler, IntervalSampler,
                                       RandomSampler, Sampler, SequentialSampler)
from mxcore.gluon.data.dataloader import DataLoader, default_batchify_fn, default_mp_batchify_fn
from mxcore.gluon.data import vision

__all__ = ["Dataset", "SimpleDataset", "ArrayDataset", "Sampler", "SequentialSampler",
           "RandomSampler", "FilterSampler", "IntervalSampler", "BatchSampler", "DataLoader",
           "default_batchify_fn", "default_mp_batchify_fn", "vision"]
