"""Documents and evaluation prompts as data, their JSONL files, the behaviour detectors, and the
evaluation prompts shipped with the package."""
