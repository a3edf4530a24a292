"""Pipeline stages: what the DAG's rules run (configs, data, models, training and evaluation runs, the
search's decisions), with artifacts, provenance, launch and the vLLM backend. Built on :mod:`cofitune.core`."""
