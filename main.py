"""sdpose-app entry point: `python main.py --source webcam` (see `python main.py --help`), or
`python main.py batch --inputs ... --output-dir ...` for many videos on Ray."""

import sys

from app.cli import main

if __name__ == "__main__":
    if sys.argv[1:2] == ["batch"]:
        from app.batch.cli import main as batch_main

        raise SystemExit(batch_main(sys.argv[2:]))
    raise SystemExit(main())
