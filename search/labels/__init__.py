"""Zero-shot labels: label sets (built-in ones in ``builtin/``), classification, evaluation against known
labels, and the metrics."""
