"""Models. Importing this module registers the mel-CNN (config, model, feature extractor) with the transformers
Auto classes."""

from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification

from .mel_cnn import MelCNNConfig, MelCNNFeatureExtractor, MelCNNForAudioClassification

AutoConfig.register(MelCNNConfig.model_type, MelCNNConfig, exist_ok=True)
AutoModelForAudioClassification.register(MelCNNConfig, MelCNNForAudioClassification, exist_ok=True)
AutoFeatureExtractor.register(MelCNNConfig, MelCNNFeatureExtractor, exist_ok=True)
# save_pretrained then ships the modeling and preprocessing code, so trust_remote_code=True users need no ser_hf.
MelCNNConfig.register_for_auto_class()
MelCNNForAudioClassification.register_for_auto_class("AutoModelForAudioClassification")
MelCNNFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")

__all__ = ["MelCNNConfig", "MelCNNFeatureExtractor", "MelCNNForAudioClassification"]
