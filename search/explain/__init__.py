"""Why an image matched: text-conditioned heatmaps over the patch grid of the SigLIP vision tower.

``head`` redoes the attention-pooling head so its attention is visible; ``methods`` holds the three maps;
``explain`` runs one of them on a frame with the embedder's own preprocessing, device and precision;
``render`` draws the overlay; ``service`` is what the CLI and the HTTP API share. Importing this package
is light: torch is imported by ``methods`` and ``head`` only.
"""

METHODS = ("legrad", "values", "maskclip")
DEFAULT_METHOD = "legrad"
"""Chosen by the pointing game of ``benchmarks/bench_explain.py`` (figures in the README)."""
NOTE = "Heuristic explanation of the score (where the query text lands for the model), not a finding."
