"""code-runner's pre-start hook for Python (docs/performance.md: "Pre-started
interpreters").

A pooled sandbox starts the language's own run command (`python3 main.py`)
before the program exists, with this folder on PYTHONPATH and
CODE_RUNNER_PRESTART=<go fd>:<ready fd> in its environment. Python runs
`site`, which imports this module after the interpreter's own start-up and
before it opens the script; here it says it is ready and waits. When the
run's files are written, the supervisor sends the run's arguments (each
ending in a NUL byte) on the go pipe and closes it: they are appended to
sys.argv, the hook removes every trace it can (its environment, its
folder on sys.path), runs the image's own sitecustomize if there is one,
and returns, so that Python goes on exactly as `python3 main.py args...`
would. Without CODE_RUNNER_PRESTART (a Python the program starts) it does
nothing but that last step.
"""

import os as _os
import sys as _sys


def _prestart():
    here = _os.path.dirname(_os.path.abspath(__file__))
    fds = _os.environ.pop("CODE_RUNNER_PRESTART", None)
    # PYTHONPATH was set only to load this hook: put back what it was.
    before = _os.environ.pop("CODE_RUNNER_PRESTART_PYTHONPATH", None)
    if before is not None:
        if before:
            _os.environ["PYTHONPATH"] = before
        else:
            _os.environ.pop("PYTHONPATH", None)
    if fds is not None:
        go, ready = (int(fd) for fd in fds.split(":"))
        _os.write(ready, b"r")
        _os.close(ready)
        data = bytearray()
        while True:
            chunk = _os.read(go, 65536)
            if not chunk:
                break
            data += chunk
        _os.close(go)
        args = [
            _os.fsdecode(bytes(arg)) for arg in bytes(data).split(b"\0")[:-1]
        ]
        _sys.argv.extend(args)
        if hasattr(_sys, "orig_argv"):
            _sys.orig_argv.extend(args)
    while here in _sys.path:
        _sys.path.remove(here)
    # The image's own sitecustomize, which this module stood in front of.
    import importlib.machinery
    import importlib.util

    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", _sys.path)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _sys.modules["sitecustomize"] = module


_prestart()
del _prestart
