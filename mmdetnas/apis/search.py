"""Run any search config: the one call behind ``tools/search.py``."""
import os.path as osp
from typing import Optional

from mmengine.config import Config


def run_search(cfg: Config, checkpoint: Optional[str] = None,
               resume: bool = False):
    """Run the search ``cfg`` describes in ``cfg.work_dir``.

    The config's ``train_cfg`` names the search loop
    (:func:`mmdetnas.engine.search_loop_class`): a DetNAS search
    (``mmdetnas.EvolutionSearchLoop``) scores paths of the supernet
    ``checkpoint``; an SM-NAS search (``mmdetnas.StructuralSearchLoop``,
    ``mmdetnas.ModularSearchLoop``) trains its candidates and takes no
    checkpoint. The search runs as the train loop of the outer Runner
    (:func:`mmdetnas.engine.build_search_runner`).

    A run refused before it wrote a search state (a checkpoint of another
    model, impossible settings or constraints, a score key the evaluator
    does not return) leaves nothing in the work dir: the Runner's log
    folder and config copy are removed again
    (:class:`mmdetnas.utils.run_files.RunFiles`).

    Args:
        cfg (Config): The search config, with ``work_dir`` (and
            ``launcher``) set, e.g. by
            :func:`mmdetnas.apis.tool_setup.prepare_cfg`.
        checkpoint (str, optional): The trained supernet (DetNAS only).
        resume (bool): Continue from ``work_dir/search_state.pkl``.

    Returns:
        The outer Runner's model.

    Raises:
        ValueError: ``train_cfg.type`` is not a search loop; a checkpoint
            given to a search that trains its candidates, or none given to
            one that scores a supernet; and every refusal of the loop.
        FileNotFoundError: the checkpoint does not exist.
    """
    from mmdetnas.engine import build_search_runner, search_loop_class
    from mmdetnas.utils import check_checkpoint_matches
    from mmdetnas.utils.run_files import RunFiles, file_signature
    loop_cls = search_loop_class(cfg)
    name = cfg.train_cfg.get('type')
    if loop_cls.needs_supernet and not checkpoint:
        raise ValueError(
            f'{name} scores paths of a trained supernet: give its checkpoint '
            '(tools/search.py CONFIG SUPERNET_CKPT)')
    if not loop_cls.needs_supernet and checkpoint:
        raise ValueError(
            f'{name} trains every candidate itself and takes no checkpoint, '
            f'got {checkpoint!r} (tools/search.py CONFIG)')
    if checkpoint and not osp.isfile(checkpoint):
        raise FileNotFoundError(
            f'supernet checkpoint not found: {checkpoint!r}')
    if checkpoint:
        cfg.load_from = checkpoint
    cfg.resume = False  # the loop resumes from its own search state
    cfg.train_cfg.resume = resume
    state = osp.join(osp.abspath(cfg.work_dir), 'search_state.pkl')
    state_before = file_signature(state)
    files = RunFiles(cfg)

    def started() -> bool:
        now = file_signature(state)
        return now is not None and now != state_before

    # refused inputs are found after the Runner has created its log folder
    # and config copy: those are removed again unless this run wrote a
    # search state
    with files.on_refusal(started):
        runner = files.track(build_search_runner(cfg))
        if checkpoint:
            # Runner loads load_from non-strictly: refuse a checkpoint of
            # another model, search space or weight sharing instead of
            # scoring random weights
            check_checkpoint_matches(runner.model, checkpoint)
        return runner.train()
