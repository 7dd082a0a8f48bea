"""sdpose-app entry point: `python main.py --source webcam` (see `python main.py --help`), or
`python main.py batch --inputs ... --output-dir ...` for many videos on Ray."""

import sys

if __name__ == "__main__":
    try:  # importing torch, OpenCV and Qt takes seconds: Ctrl-C then is no traceback either
        from app.cli import main
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    if sys.argv[1:2] == ["batch"]:
        from app.batch.cli import main as batch_main

        raise SystemExit(batch_main(sys.argv[2:]))
    raise SystemExit(main())
