from .backbones import *  # noqa: F401,F403
from .classifiers import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .reference_conversion import (ConvertedCheckpoint,  # noqa: F401
                                   convert_reference_checkpoint)
