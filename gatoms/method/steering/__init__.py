"""Step 06: steering with atoms (paper §4.3, Table 2, Figure 2), judged so that damage cannot pass for
steering.

- :mod:`.config` — :class:`SteeringConfig`, the profile section (every size that costs time).
- :mod:`.choice` — each behaviour's atom from the atom table: by the detector on training responses
  (unsupervised, the default), the label-based choice as an oracle row.
- :mod:`.splits` — evaluation prompts split into dev (every choice) and test (every reported rate);
  held-out documents to grade.
- :mod:`.variants` — unprojected directions and steered variants θ' = θ − α·v.
- :mod:`.budget` — α fixed in advance: the α at which the KL on neutral dev prompts reaches a budget.
- :mod:`.nulls` — random, subspace and other-atom directions at the same α; empirical p-values.
- :mod:`.plan` — the directions, budgets and generation jobs of the step.
- :mod:`.evaluation` — generation and scoring into records; rates.
- :mod:`.damage` — KL from the clean adapter and held-out loss of each variant.
- :mod:`.effects` — signed and symmetric effects with paired bootstrap intervals.
- :mod:`.intact` — capability kept: the intact verdict.
- :mod:`.summary` — records → each behaviour's result, the verdict, goals; :mod:`.metrics` — what is
  recorded; :mod:`.tables` — the tables and sampled outputs.
"""

from gatoms.method.steering.budget import Budget, budget_alpha
from gatoms.method.steering.choice import AtomChoice, choose, choose_atoms, labels_from_detector, labels_from_fmt
from gatoms.method.steering.config import NULL_KINDS, SIGNS, SteeringConfig, parse_composition
from gatoms.method.steering.damage import divergences, finetune_kl, measure_damage, null_damage, resolve_budget
from gatoms.method.steering.effects import Effect, bootstrap_ci, effect, effect_of, per_prompt, signed_effect
from gatoms.method.steering.evaluation import KINDS, RateKey, best, composition_rates, curve, evaluate, rates
from gatoms.method.steering.intact import IntactRule, Intactness, capability, judge, paired_capability, worse
from gatoms.method.steering.metrics import BestCell, CompositionPart, CurvePoint, SteeredAtom, SteeringMetrics
from gatoms.method.steering.nulls import NullResult, match_module_norms, null_candidates, null_directions, null_test
from gatoms.method.steering.plan import Directions, budgets, build_directions, damage_variants, export_jobs, plan_jobs
from gatoms.method.steering.splits import Item, capability_items, check_disjoint, split_prompts
from gatoms.method.steering.summary import (Evaluation, goals, prompt_counts, summarize_behaviors,
                                            summarize_composition, summarize_oracle)
from gatoms.method.steering.tables import samples, write_curve_table, write_null_table, write_samples, write_table2
from gatoms.method.steering.variants import (clean_variant, composition_variant, match_norm, module_norms,
                                             random_direction, steering_variants, variant_name)

__all__ = [
    "KINDS", "NULL_KINDS", "SIGNS", "AtomChoice", "BestCell", "Budget", "CompositionPart", "CurvePoint", "Directions",
    "Effect", "Evaluation", "IntactRule", "Intactness", "Item", "NullResult", "RateKey", "SteeredAtom",
    "SteeringConfig", "SteeringMetrics", "best", "bootstrap_ci", "budget_alpha", "budgets", "build_directions",
    "capability", "capability_items", "check_disjoint", "choose", "choose_atoms", "clean_variant",
    "composition_rates", "composition_variant", "curve", "damage_variants", "divergences", "export_jobs", "effect", "effect_of",
    "evaluate", "finetune_kl", "null_damage", "resolve_budget", "goals", "judge", "labels_from_detector", "labels_from_fmt", "match_module_norms",
    "match_norm", "measure_damage", "module_norms", "null_candidates", "null_directions", "null_test", "paired_capability",
    "parse_composition", "per_prompt", "plan_jobs", "prompt_counts", "random_direction", "rates", "samples",
    "signed_effect", "split_prompts", "steering_variants", "summarize_behaviors", "summarize_composition",
    "summarize_oracle", "variant_name", "worse", "write_curve_table", "write_null_table", "write_samples",
    "write_table2",
]
