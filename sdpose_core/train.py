"""Old name of `python -m sdpose_core.training.train`, kept while docs/training.md still uses it."""

import runpy

if __name__ == "__main__":
    runpy.run_module("sdpose_core.training.train", run_name="__main__", alter_sys=True)
