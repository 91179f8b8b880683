"""Step 02: the EKFAC eigenbasis of every LoRA module, top-k projection, whitening, and the way back.

- :mod:`.factors` — the Kronecker factors A_m, S_m that step 01 accumulates.
- :mod:`.eigenbasis` — float64 eigendecompositions, KFAC or EKFAC eigenvalues, damping.
- :mod:`.projection` — :class:`Projection`: ``project`` rows into the whitened top-k space, ``unproject``
  an atom back into a LoRA direction.
- :mod:`.stream` — :func:`fit_projection`: Λ, Z and the energy curves in one or two float32 passes (what
  step 02 runs; the functions above are its float64 reference).
"""

from gatoms.method.ekfac.eigenbasis import (DAMPING_MODES, EIGEN_MODES, Eigenbasis, EkfacConfig, ProjectionSettings,
                                            ekfac_eigenvalues, fit_eigenbasis)
from gatoms.method.ekfac.factors import Factors
from gatoms.method.ekfac.projection import EkfacMetrics, Projection, energy_curves, normalize_rows, summarize
from gatoms.method.ekfac.stream import ProjectionFit, fit_projection

__all__ = ["DAMPING_MODES", "EIGEN_MODES", "Eigenbasis", "EkfacConfig", "Factors", "Projection", "ProjectionSettings",
           "EkfacMetrics", "ProjectionFit", "summarize", "fit_projection", "ekfac_eigenvalues", "energy_curves", "fit_eigenbasis", "normalize_rows"]
