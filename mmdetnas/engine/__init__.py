"""What mmengine's Runner runs for the toolkit: the search loops
(:mod:`.loops`), the hooks (:mod:`.hooks`) and the outer Runner of a search
(:mod:`.search_runner`)."""
from .hooks import *  # noqa: F401,F403
from .loops import *  # noqa: F401,F403
from .search_runner import (SearchDriverModel, build_search_runner,
                            search_loop_class)

__all__ = ['SearchDriverModel', 'build_search_runner', 'search_loop_class']
