"""The flags several ``ser-hf`` commands share: corpus names from the registry, ``--verify_counts``,
``--overwrite_output_dir`` and the ``NAME=VALUE`` pairs."""

from __future__ import annotations

import argparse


def add_verify_counts(parser: argparse.ArgumentParser) -> None:
    """``--verify_counts true|false``: check each corpus's documented clip counts (false: a folder holding a subset)."""
    from transformers.hf_argparser import string_to_bool  # the true/false parser of finetune.py's flags

    parser.add_argument(
        "--verify_counts",
        type=string_to_bool,
        default=True,
        help="check each corpus's documented clip counts (false: the folder holds a subset)",
    )


def add_overwrite_report(parser: argparse.ArgumentParser) -> None:
    """``--overwrite_output_dir``: a report command may replace an earlier report's files in ``--output_dir``."""
    parser.add_argument(
        "--overwrite_output_dir",
        action="store_true",
        help="replace an earlier report's files in --output_dir (nothing else there is touched)",
    )


def _pair(flag: str, what: str, example: str, lower: bool = False):
    """An argparse type for ``NAME=VALUE`` flags (``--system``, ``--corpus``, ``--label_alias``): the pair, or an
    error naming the flag, the text and the expected form."""

    def parse(text: str) -> tuple[str, str]:
        name, sep, value = text.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise argparse.ArgumentTypeError(f"{flag} {text!r}: expected {what}, e.g. {example}")
        return (name.strip().lower(), value.strip().lower()) if lower else (name, value)

    return parse


_alias = _pair("--label_alias", "ALIAS=CANONICAL", "amused=happy", lower=True)
_system = _pair("--system", "NAME=RUN_DIR", "mel_cnn=runs/cv")
_corpus_dir = _pair("--corpus", "NAME=DATA_DIR", "eyase=data/eyase")


def corpus_names() -> list[str]:
    """The registry's corpus names (:data:`ser_hf.corpora.REGISTRY`), ``folder`` last: the choices of every
    ``--corpus`` flag."""
    from .corpora import REGISTRY

    return list(REGISTRY)
