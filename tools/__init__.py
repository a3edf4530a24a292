"""Tools around the pipeline, outside the method package: the bench launcher (``bench.py``), the Snakemake
report's screenshot (``report_capture.py``) and the HF-vs-vLLM parity check (``parity.py``). Each is a script
(``python tools/<name>.py --help``) that uses the package; the package never imports them."""
