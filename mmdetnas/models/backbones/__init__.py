from .detnas_shufflenetv2 import (SHUFFLE_ORDER_KEY, WEIGHT_SHARING,
                                  DetNASShuffleNetV2, entangled_routes,
                                  shuffle_order_tensor,
                                  slice_supernet_state_dict)
from .smnas_resnet import SMNASResNet

__all__ = [
    'DetNASShuffleNetV2', 'SMNASResNet', 'slice_supernet_state_dict',
    'entangled_routes', 'WEIGHT_SHARING', 'SHUFFLE_ORDER_KEY',
    'shuffle_order_tensor'
]
