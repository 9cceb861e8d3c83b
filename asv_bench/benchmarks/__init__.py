"""asv benchmarks for mxcore: run them from ``asv_bench/`` (see ../README.md).

Thread pinning (OMP/MKL/OPENBLAS_NUM_THREADS=1) lives in ``../asv.conf.json``
(``matrix.env_nobuild``), not here: asv_runner has imported numpy before this
package is imported, so setting the variables from Python would be too late.
"""
