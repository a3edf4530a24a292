"""The method core: region selection, importance, soft masks, the search tree, tokenisation, the trainer,
distributed helpers and the method registry. It works on models and tensors and imports neither
:mod:`cofitune.pipeline` nor :mod:`cofitune.reporting` (``tests/unit/test_floors.py``)."""
