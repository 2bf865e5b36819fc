from .shuffle_blocks import (SHUFFLE_ORDERS, ShuffleChoiceBlock,
                             build_choice_block, channel_shuffle_split)

__all__ = [
    'SHUFFLE_ORDERS', 'ShuffleChoiceBlock', 'build_choice_block',
    'channel_shuffle_split'
]
