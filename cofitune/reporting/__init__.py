"""Reporting: statistics, measures, tables, claims, plots, the report and the bench gate. It reads
artifacts (:mod:`cofitune.pipeline.io`) and never imports a stage or the method core."""
