"""``gluon.data``: datasets, samplers, the DataLoader and vision datasets."""
