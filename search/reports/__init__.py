"""Radiology reports: reading findings, with their negation and uncertainty, from report text."""
