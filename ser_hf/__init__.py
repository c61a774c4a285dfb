"""ser_hf: speech emotion recognition on the Hugging Face stack.

Importing ``ser_hf`` registers its models with the transformers Auto classes, so
``AutoModelForAudioClassification.from_pretrained(run_dir)`` and ``pipeline("audio-classification", model=run_dir)``
work on its checkpoints.
"""

from . import models  # noqa: F401  (registers the Auto classes)
from .audio import AudioError, load_audio
from .corpora import CORPORA, CorpusError, load_corpus
from .folds import LeakageError, SplitDefinition, make_split
from .inference import ClipPrediction, EmotionTimeline, predict, predict_timeline
from .metrics import compute_ser_metrics
from .models import MelCNNConfig, MelCNNForAudioClassification

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
