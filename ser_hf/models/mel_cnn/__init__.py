from .configuration_mel_cnn import MelCNNConfig
from .modeling_mel_cnn import LogMel, MelCNNForAudioClassification, MelCNNPreTrainedModel

__all__ = ["LogMel", "MelCNNConfig", "MelCNNForAudioClassification", "MelCNNPreTrainedModel"]
