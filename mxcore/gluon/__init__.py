"""``mx.gluon``: blocks, layers, losses, the Trainer and data loading."""
