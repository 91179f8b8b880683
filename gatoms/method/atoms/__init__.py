"""Step 03: sparse dictionary learning of the projected gradients into atoms (paper §3.3, Eq. 2).

- :mod:`.dictionary` — :func:`learn_dictionary` (scikit-learn, the paper's, or ours), the sign
  orientation, saving and loading, the step's metrics.
- :mod:`.solver` — our streaming torch solver of the same objective.
"""

from gatoms.method.atoms.dictionary import (ACTIVE_THRESHOLD, BACKENDS, AtomsConfig, AtomsMetrics, Dictionary,
                                            docs_per_atom, learn_dictionary, load_dictionary, objective,
                                            orient_signs, save_dictionary, summarize)
from gatoms.method.atoms.solver import encode, encode_chunk

__all__ = ["ACTIVE_THRESHOLD", "BACKENDS", "AtomsConfig", "AtomsMetrics", "Dictionary", "docs_per_atom", "encode",
           "encode_chunk", "learn_dictionary", "load_dictionary", "objective", "orient_signs", "save_dictionary",
           "summarize"]
