"""``mx.nd.linalg``: MXNet's linear-algebra operators under their short names
(``mx.nd.linalg.gemm2`` is ``mx.nd.linalg_gemm2``), as in MXNet 1.x."""
from mxcore.ops.linalg import linalg_det as det
from mxcore.ops.linalg import linalg_extractdiag as extractdiag
from mxcore.ops.linalg import linalg_extracttrian as extracttrian
from mxcore.ops.linalg import linalg_gemm as gemm
from mxcore.ops.linalg import linalg_gelqf as gelqf
from mxcore.ops.linalg import linalg_gemm2 as gemm2
from mxcore.ops.linalg import linalg_inverse as inverse
from mxcore.ops.linalg import linalg_makediag as makediag
from mxcore.ops.linalg import linalg_maketrian as maketrian
from mxcore.ops.linalg import linalg_potrf as potrf
from mxcore.ops.linalg import linalg_potri as potri
from mxcore.ops.linalg import linalg_slogdet as slogdet
from mxcore.ops.linalg import linalg_sumlogdiag as sumlogdiag
from mxcore.ops.linalg import linalg_syevd as syevd
from mxcore.ops.linalg import linalg_syrk as syrk
from mxcore.ops.linalg import linalg_trmm as trmm
from mxcore.ops.linalg import linalg_trsm as trsm

__all__ = ["det", "extractdiag", "extracttrian", "gelqf", "gemm", "gemm2", "inverse",
           "makediag", "maketrian", "potrf", "potri", "slogdet", "sumlogdiag", "syevd", "syrk",
           "trmm", "trsm"]
