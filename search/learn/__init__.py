"""Cohorts for machine learning: few-shot linear probes on the stored vectors (``probe``), patient-level
splits saved as fields (``split``) and a leakage audit across splits (``audit``; its calibration:
``calibration``, ``copies``, ``pixels``, ``neighbours``). Selections of images reuse the filter and
cohort code (``selection``)."""
