from .backbones import *  # noqa: F401,F403
from .classifiers import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .reference_conversion import (BackbonePrefixError,  # noqa: F401
                                   ConvertedCheckpoint,
                                   convert_reference_checkpoint,
                                   convert_reference_file)
from .searchable import find_searchable_backbones, is_searchable  # noqa: F401
