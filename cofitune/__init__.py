"""cofitune: coarse-to-fine supervised fine-tuning that keeps an aligned LLM's versatility."""

__version__ = "0.1.0"
