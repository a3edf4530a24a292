"""The DAG's stages, one module each, each with one ``run(...)`` that the rule of that stage calls through
``python -m cofitune <stage>``: the rule passes exactly one resolved config file (read into the stage's frozen
dataclass, :mod:`cofitune.pipeline.stage_configs`; a row's run config for ``train`` and ``evaluate``) plus its
input and output paths, never a value as a flag. It writes its outputs atomically. What each reads and writes:

=============  =====================================================  ==========================================
stage          reads                                                  writes
=============  =====================================================  ==========================================
``model``      the model sheet (and the HF cache or the GGUF wheel)   safetensors folder + meta JSON
``data``       its config (the task's sheet entry), the raw files     train/test JSONL + meta.json
``probe``      its config, the prepared model, the versatility       the drift probe JSON
               subsets
``importance`` its config, the prepared model, train.jsonl            raw + normalised importance (safetensors)
``region``     a from_search row's run/train config, chosen.json     the resolved config JSON
``train``      the resolved run config, model, data, importance or   checkpoint folder (trainable tensors,
               source checkpoints                                     trainable.json, train_log.jsonl)
``evaluate``   the resolved run config, model, checkpoint, test set,  metrics.json + predictions.jsonl
               probe, model/data meta
``search``     its config, the trials' metrics.json, the original's   one level's (or the grid's) decision JSON
               metrics.json, the previous level's decision
=============  =====================================================  ==========================================

Reporting (tables, plots, the bench gate) reads these artifacts: :mod:`cofitune.reporting`.
"""
