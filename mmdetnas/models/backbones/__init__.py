from .detnas_shufflenetv2 import (WEIGHT_SHARING, DetNASShuffleNetV2,
                                  entangled_routes, slice_supernet_state_dict)

__all__ = [
    'DetNASShuffleNetV2', 'slice_supernet_state_dict', 'entangled_routes',
    'WEIGHT_SHARING'
]
