from .configuration_mel_cnn import MelCNNConfig
from .feature_extraction_mel_cnn import MelCNNFeatureExtractor
from .modeling_mel_cnn import LogMel, MelCNNForAudioClassification, MelCNNPreTrainedModel

__all__ = ["LogMel", "MelCNNConfig", "MelCNNFeatureExtractor", "MelCNNForAudioClassification", "MelCNNPreTrainedModel"]
