"""The method of the paper, step by step: per-document gradients (01), the EKFAC projection (02),
dictionary learning (03), coherence and the atom table (04), ablations (05) and steering (06), with the
ground-truth discovery metrics and the evaluation statistics."""
