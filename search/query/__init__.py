"""The query stage: parts and their composition, the text-vector cache, filtered ranking and grouping,
results with metadata, and scoring."""
