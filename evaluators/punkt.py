"""NLTK's English Punkt sentence splitter, trained locally and offline: lm-eval's IFEval scorer needs it and
would otherwise download it. The model is trained from ``resources/nltk/english_text.txt`` (its source is noted
in ``resources/data/versatility/SOURCES.md``) into the pipeline's NLTK folder (``results/nltk_data``, rule ``prepare_nltk``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cofitune import repo

PUNKT_TRAINING_TEXT = repo.ROOT / "resources" / "nltk" / "english_text.txt"
PUNKT_PROVENANCE = "trained locally on resources/nltk/english_text.txt"
_PUNKT_FILES = ("collocations.tab", "sent_starters.txt", "abbrev_types.txt", "ortho_context.tab")


def _punkt_model_dir(nltk_dir: Path) -> Path:
    return nltk_dir / "tokenizers" / "punkt_tab" / "english"


def _train_punkt(nltk_dir: Path, text_path: Path) -> None:
    """Train a Punkt model on ``text_path`` and write it as NLTK ``punkt_tab/english``.

    Written to a staging folder first and renamed, so an interrupted run never leaves a
    half-written model behind. Training is deterministic for a given text.
    """
    from nltk.tokenize import punkt

    text = text_path.read_text(encoding="utf-8")
    trainer = punkt.PunktTrainer()  # NLTK's default settings
    trainer.train(text, finalize=True)
    params = trainer.get_params()

    target = _punkt_model_dir(nltk_dir)
    staging = target.with_name("english.partial")
    if staging.exists():
        shutil.rmtree(staging)
    target.parent.mkdir(parents=True, exist_ok=True)
    # nltk >= 3.10 only writes into a private (0700) folder on its data path.
    punkt.save_punkt_params(params, dir=str(staging))
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)


def ensure_punkt(nltk_dir: Path, text_path: Path = PUNKT_TRAINING_TEXT) -> Path:
    """Make NLTK's English ``punkt_tab`` model available offline from ``nltk_dir``.

    Sets ``NLTK_DATA`` (and ``nltk.data.path``, in case nltk is already imported), trains
    the model from ``text_path`` if it is not there yet, and checks that
    ``nltk.sent_tokenize`` loads *this* model. Returns the model folder.

    Raises:
        FileNotFoundError: the training text is missing.
        RuntimeError: NLTK resolves ``punkt_tab`` to a different folder.
    """
    nltk_dir = Path(nltk_dir).resolve()
    nltk_dir.mkdir(parents=True, exist_ok=True)
    os.environ["NLTK_DATA"] = str(nltk_dir)  # read by nltk at import time
    import nltk

    if str(nltk_dir) not in nltk.data.path:
        nltk.data.path.insert(0, str(nltk_dir))

    model_dir = _punkt_model_dir(nltk_dir)
    if not all((model_dir / f).is_file() for f in _PUNKT_FILES):
        if not text_path.is_file():
            raise FileNotFoundError(f"Punkt training text not found: {text_path}")
        _train_punkt(nltk_dir, text_path)

    found = Path(str(nltk.data.find("tokenizers/punkt_tab/english/"))).resolve()
    if found != model_dir.resolve():
        raise RuntimeError(f"NLTK resolves punkt_tab/english to {found}, expected the local model {model_dir}")
    if len(nltk.sent_tokenize("This is one sentence. This is another one.")) != 2:
        raise RuntimeError(f"the Punkt model in {model_dir} does not split two simple sentences")
    return model_dir


@contextmanager
def _nltk_downloads_forbidden() -> Iterator[None]:
    """Make any ``nltk.download`` call raise instead of (quietly) trying the network."""
    import nltk

    def _refuse(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError(
            f"nltk.download{args!r} was called; cofitune evaluates offline. "
            "Call ensure_punkt() before importing lm_eval.tasks.ifeval."
        )

    original = nltk.download
    nltk.download = _refuse
    try:
        yield
    finally:
        nltk.download = original


def import_ifeval_scorer() -> None:
    """Import lm-eval's IFEval scorer offline and check that its sentence splitter works.

    ``lm_eval.tasks.ifeval.instructions_util`` calls ``nltk.download("punkt_tab")`` at
    import time if the model is missing; with :func:`ensure_punkt` done first it finds
    the local model, and the guard turns any remaining download attempt into an error.
    """
    with _nltk_downloads_forbidden():
        from lm_eval.tasks.ifeval import instructions_util, utils  # noqa: F401

    if instructions_util.count_sentences("One sentence here. And a second one!") != 2:
        raise RuntimeError("lm-eval's IFEval sentence counter does not work with the local Punkt model")
