"""ser_hf: speech emotion recognition on the Hugging Face stack.

Importing ``ser_hf`` registers its models with the transformers Auto classes, so
``AutoModelForAudioClassification.from_pretrained(run_dir)`` and ``pipeline("audio-classification", model=run_dir)``
work on its checkpoints.
"""

from . import models  # noqa: F401  (registers the Auto classes)
from .audio import AudioError, load_audio
from .inference import ClipPrediction, EmotionTimeline, predict, predict_timeline
from .models import MelCNNConfig, MelCNNForAudioClassification

# corpora, folds and metrics pull in datasets / scikit-learn / evaluate (about 260 MB of memory): they are
# imported on first use, so that inference-only users (ser_hf.predict) do not pay for them
_LAZY = {
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
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'ser_hf' has no attribute {name!r}")


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
