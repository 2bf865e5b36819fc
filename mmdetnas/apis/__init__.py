"""What the command-line tools call: each tool in ``tools/`` parses its
arguments and makes one library call. :mod:`mmdetnas.apis.tool_setup` holds
the start-up the tools share (a config loaded with mmdet's flags, the
distributed start-up, the runner, a checkpoint's architecture); the tools'
argument parsing and one-line error printing stay in ``tools/common.py``.
"""
