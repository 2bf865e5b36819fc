from .base_search_loop import BaseSearchLoop
from .evolution_search_loop import EvolutionSearchLoop
from .smnas_search_loops import (LastValidation, ModularSearchLoop,
                                 StructuralSearchLoop, validate_at_end_only)

__all__ = [
    'BaseSearchLoop', 'EvolutionSearchLoop', 'StructuralSearchLoop',
    'ModularSearchLoop', 'LastValidation', 'validate_at_end_only'
]
