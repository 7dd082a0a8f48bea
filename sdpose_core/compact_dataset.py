"""Old name of `python -m sdpose_core.labels.compact_dataset`, kept while docs/training.md still uses it."""

import runpy

if __name__ == "__main__":
    runpy.run_module("sdpose_core.labels.compact_dataset", run_name="__main__", alter_sys=True)
