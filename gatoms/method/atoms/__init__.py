"""Step 03: sparse dictionary learning of the projected gradients into atoms (paper §3.3, Eq. 2)."""

from gatoms.method.atoms.dictionary import (
                                            ACTIVE_THRESHOLD,
                                            BACKENDS,
                                            AtomsConfig,
                                            Dictionary,
                                            docs_per_atom,
                                            learn_dictionary,
                                            load_dictionary,
                                            objective,
                                            orient_signs,
                                            save_dictionary,
)
from gatoms.method.atoms.solver import encode, encode_chunk

__all__ = ["ACTIVE_THRESHOLD", "BACKENDS", "AtomsConfig", "Dictionary", "docs_per_atom", "encode", "encode_chunk",
           "learn_dictionary", "load_dictionary", "objective", "orient_signs", "save_dictionary"]
