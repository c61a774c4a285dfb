"""ser_hf: speech emotion recognition on the Hugging Face stack.

Importing ``ser_hf`` registers its models with the transformers Auto classes, so
``AutoModelForAudioClassification.from_pretrained(run_dir)`` and ``pipeline("audio-classification", model=run_dir)``
work on its checkpoints. The registration runs as soon as transformers is imported (at once if it already is), so
that ``import ser_hf.audio`` alone loads neither torch nor transformers.
"""

import importlib
import importlib.abc
import importlib.util
import sys

# every public name is imported on first use: corpora, folds and metrics pull in datasets / scikit-learn /
# evaluate (about 260 MB of memory), models and inference torch and transformers
_LAZY = {
    "AudioError": ".audio",
    "load_audio": ".audio",
    "ClipPrediction": ".inference",
    "EmotionTimeline": ".timeline",
    "predict": ".inference",
    "predict_timeline": ".timeline",
    "MelCNNConfig": ".models",
    "MelCNNForAudioClassification": ".models",
    "CORPORA": ".corpora",
    "CorpusError": ".corpora",
    "load_corpus": ".corpora",
    "LeakageError": ".folds",
    "SplitDefinition": ".folds",
    "make_split": ".folds",
    "compute_ser_metrics": ".metrics",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'ser_hf' has no attribute {name!r}")


def _register_models() -> None:
    importlib.import_module(".models", __name__)  # registers the mel-CNN with the Auto classes


class _AfterTransformers(importlib.abc.MetaPathFinder):
    """Runs :func:`_register_models` right after ``transformers`` is first imported (a one-shot import hook)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "transformers":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            _register_models()

        spec.loader.exec_module = exec_module
        return spec


if "transformers" in sys.modules:
    _register_models()
elif not any(isinstance(f, _AfterTransformers) for f in sys.meta_path):
    sys.meta_path.insert(0, _AfterTransformers())

__version__ = "0.1.0"

__all__ = [
    "CORPORA",
    "ClipPrediction",
    "EmotionTimeline",
    "AudioError",
    "CorpusError",
    "LeakageError",
    "MelCNNConfig",
    "MelCNNForAudioClassification",
    "SplitDefinition",
    "compute_ser_metrics",
    "load_audio",
    "load_corpus",
    "make_split",
    "predict",
    "predict_timeline",
]
