"""gatoms — Gradient Atoms: unsupervised discovery and steering of model behaviours by sparse
decomposition of per-document training gradients.

The package holds all logic; the numbered notebooks in ``notebooks/`` tell the story and call it.
Run the whole paper with ``make paper`` (default profile ``tiny``), one step with e.g. ``make extract``.
"""

__version__ = "0.1.0"
