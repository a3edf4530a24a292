"""The DAG's stages, one module each, each with one ``run(...)`` that the rule of that stage calls through
``python -m cofitune <stage>``: it reads the files it is given (a resolved config where the stage has one)
and writes its outputs atomically. What each reads and writes:

=============  =====================================================  ==========================================
stage          reads                                                  writes
=============  =====================================================  ==========================================
``model``      the model sheet (and the HF cache or the GGUF wheel)   safetensors folder + meta JSON
``data``       the task sheet and the raw data files                  train/test JSONL + meta.json
``probe``      the prepared model, the versatility subsets           the drift probe JSON
``importance`` the prepared model, train.jsonl                        raw + normalised importance (safetensors)
``region``     a from_search row's run/train config, chosen.json     the resolved config JSON
``train``      the resolved run config, model, data, importance or   checkpoint folder (trainable tensors,
               source checkpoints                                     trainable.json, train_log.jsonl)
``evaluate``   the resolved run config, model, checkpoint, test set,  metrics.json + predictions.jsonl
               probe, model/data meta
``search``     the trials' metrics.json, the original's metrics.json  one level's (or the grid's) decision JSON
=============  =====================================================  ==========================================

Reporting (tables, plots, the bench gate) reads these artifacts: :mod:`cofitune.reporting`.
"""
