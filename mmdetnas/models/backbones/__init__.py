from .detnas_shufflenetv2 import DetNASShuffleNetV2, slice_supernet_state_dict

__all__ = ['DetNASShuffleNetV2', 'slice_supernet_state_dict']
