"""Models. Importing this module registers the mel-CNN with the transformers Auto classes."""

from transformers import AutoConfig, AutoModelForAudioClassification

from .mel_cnn import MelCNNConfig, MelCNNForAudioClassification

AutoConfig.register(MelCNNConfig.model_type, MelCNNConfig, exist_ok=True)
AutoModelForAudioClassification.register(MelCNNConfig, MelCNNForAudioClassification, exist_ok=True)
# save_pretrained then ships the modeling code, so trust_remote_code=True users need no ser_hf install.
MelCNNConfig.register_for_auto_class()
MelCNNForAudioClassification.register_for_auto_class("AutoModelForAudioClassification")

__all__ = ["MelCNNConfig", "MelCNNForAudioClassification"]
