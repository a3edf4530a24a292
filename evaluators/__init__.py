"""Evaluators for cofitune: versatility (lm-evaluation-harness suites) and speciality."""
