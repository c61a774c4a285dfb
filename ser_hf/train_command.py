"""``ser-hf train`` / ``scripts/finetune.py``: train (:func:`ser_hf.training.main`), then, with ``--push_to_hub``,
publish the run it names (:func:`ser_hf.hub.push_to_hub`). Training itself never publishes; this command does."""

from __future__ import annotations

import logging
import sys

logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> dict:
    """Train as :func:`ser_hf.training.main` does, then publish: the fold's run, or with ``--all_folds`` the fold
    with the best validation UA (never test), with ``--seeds`` the last seed's.

    Returns:
        What :func:`ser_hf.training.main` returns.

    Raises:
        ValueError: ``--push_to_hub true`` without ``--hub_model_id`` or a token (before any training), or the
            upload failed (:class:`ser_hf.hub.PushError`; the run directory is kept as it is).
    """
    from .environment import first_process
    from .training import PUBLISH_DIR, parse_args, run

    model_args, data_args, training_args = parse_args(argv)
    result = run(model_args, data_args, training_args)  # trains on copies: the publishing flags stay here
    if result.get(PUBLISH_DIR) and first_process():
        from .hub import PushError, push_to_hub

        try:
            pushed = push_to_hub(
                result[PUBLISH_DIR],
                training_args.hub_model_id,
                private=bool(training_args.hub_private_repo),
                revision=getattr(training_args, "hub_revision", None),
                token=training_args.hub_token,
            )
        except PushError as err:  # the run is kept as it is: say why the upload failed, in one line
            raise ValueError(f"{result[PUBLISH_DIR]} was trained but not published: {err}") from None
        logger.info("pushed %s to %s: %s", result[PUBLISH_DIR], training_args.hub_model_id, pushed["url"])
    return result


def run_cli(argv: list[str] | None = None) -> int:
    """:func:`main` for the command line: a bad flag, file or corpus prints one ``error:`` line naming it (exit
    status 2) instead of a traceback."""
    from .audio import AudioError
    from .corpora import CorpusError
    from .download import DownloadError

    try:
        main(argv)
    except (ValueError, OSError, CorpusError, AudioError, DownloadError, FloatingPointError) as err:
        print(f"ser-hf train: error: {err}", file=sys.stderr)
        return 2
    return 0
