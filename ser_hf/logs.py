"""How ser_hf's commands report: through :mod:`logging` under the ``ser_hf`` logger (transformers' convention),
never ``print``; a library user keeps control of the handlers, a command turns reporting on."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    """For commands (``ser-hf ...``, ``scripts/finetune.py``): log ``level`` and above to stderr with
    :data:`FORMAT` (:func:`logging.basicConfig`, so handlers a caller set up first are kept)."""
    logging.basicConfig(format=FORMAT, level=level)
