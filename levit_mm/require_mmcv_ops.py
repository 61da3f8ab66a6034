"""Named in the dense (mmdet/mmseg) configs' ``custom_imports``: stops with one line when
mmcv has no compiled ops.

The demo's light environment has mmcv-lite (mmcv's Python part), which is all classification
needs; mmdet's and mmseg's models import ``mmcv.ops``.  Without this check a dense config
parses, then fails deep in a registry build with ``No module named 'mmcv._ext'``.
"""
import importlib.util
import sys

MESSAGE = ('error: mmdet/mmseg configs need mmcv with its compiled ops, and this environment '
           "has mmcv without them (the demo's light setup): run `bash tools/setup_env.sh "
           '--full` once (builds mmcv 2.1.0 with CPU ops, about 10 minutes on 2 cores).')


def has_mmcv_ops() -> bool:
    try:
        return importlib.util.find_spec('mmcv._ext') is not None
    except ImportError:  # no mmcv at all
        return False


if not has_mmcv_ops():
    # Raised while mmengine imports the config's custom modules: an exception would end a
    # traceback through mmengine's config code, so exit as the tools do (one line, status 2).
    print(MESSAGE, file=sys.stderr)
    raise SystemExit(2)
