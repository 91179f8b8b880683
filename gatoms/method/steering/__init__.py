"""Step 06: steering with atoms (paper §4.3, Table 2, Figure 2).

- :mod:`.config` — :class:`SteeringConfig`, the profile section.
- :mod:`.variants` — directions (atoms unprojected, random and preconditioned controls) and variants.
- :mod:`.choice` — the atom of each behaviour, chosen from the atom table.
- :mod:`.evaluation` — generation jobs, detector rates, Table 2 rows and per-behaviour summaries.
"""

from gatoms.method.steering.choice import AtomChoice, choose_atoms, labels_from_detector, labels_from_fmt
from gatoms.method.steering.config import SIGNS, SteeringConfig, parse_composition
from gatoms.method.steering.evaluation import (KINDS, RateKey, behavior_summary, best, composition_rates, curve,
                                               evaluate, goal_check, intact, random_shifts, rates, table2_rows)
from gatoms.method.steering.variants import (class_mean_atom, clean_variant, composition_variant, match_norm,
                                             module_norms, random_direction, steering_variants, variant_name)

__all__ = ["KINDS", "SIGNS", "AtomChoice", "RateKey", "SteeringConfig", "behavior_summary", "best", "choose_atoms",
           "class_mean_atom", "clean_variant", "composition_rates", "composition_variant", "curve", "evaluate",
           "goal_check", "intact", "labels_from_detector", "labels_from_fmt", "match_norm", "module_norms",
           "parse_composition", "random_direction", "random_shifts", "rates", "steering_variants", "table2_rows",
           "variant_name"]
