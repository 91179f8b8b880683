"""What the pipeline reports: the paper's numbers, the results of a profile, the figures, RESULTS.md and
the atom atlas."""
