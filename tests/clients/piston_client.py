"""Piston's PyPI client `ultra-piston`, unchanged but for its base URL,
against a running code-runner: list runtimes, hello world, stdin, args, a
compile error, a timeout, a version range, a refused request.

Usage: piston_client.py BASE_URL   (e.g. http://127.0.0.1:PORT/api/v2/)
Serves: python 3.13 and 3.11, c. Prints one line per check; exits non-zero
on the first that fails.
"""

import sys

from ultra_piston import File, PistonClient
from ultra_piston.errors import BadRequestError


def check(name, got, expected):
    if got != expected:
        sys.exit(f"{name}: expected {expected!r}, got {got!r}")
    print(f"ok {name}")


def main(base_url):
    client = PistonClient(base_url=base_url, rate_limit=0)

    runtimes = client.get_runtimes()
    check(
        "runtimes",
        sorted((r.language, r.version, tuple(r.aliases)) for r in runtimes),
        [
            ("c", "14.0.0", ("gcc",)),
            ("python", "3.11.0", ("py", "python3")),
            ("python", "3.13.0", ("py", "python3")),
        ],
    )

    out = client.post_execute("python", "*", File(content="print('Hello, World!')"))
    check("hello world", (out.run.stdout, out.run.code, out.run.signal), ("Hello, World!\n", 0, None))
    check("hello world: newest version", (out.language, out.version), ("python", "3.13.0"))
    check("hello world: no compile stage", out.compile, None)

    out = client.post_execute(
        "py", "3", File(name="echo.py", content="print(input()[::-1])"), stdin="stressed"
    )
    check("stdin", out.run.stdout, "desserts\n")

    out = client.post_execute(
        "python", "*", File(content="import sys\nprint(sys.argv[1:])"), args=["1", "two", "3 4"]
    )
    check("args", out.run.stdout, "['1', 'two', '3 4']\n")

    out = client.post_execute("c", "*", File(name="main.c", content="int main( { return 0; }"))
    check("compile error: compile failed", out.compile is not None and out.compile.code not in (0, None), True)
    check("compile error: error on stderr", "error" in out.compile.stderr, True)
    check("compile error: run is the compile", out.run.model_dump(), out.compile.model_dump())

    out = client.post_execute("c", "14", File(content='#include <stdio.h>\nint main(void) { puts("compiled"); return 3; }'))
    check("compiled run", (out.compile.code, out.run.stdout, out.run.code), (0, "compiled\n", 3))

    out = client.post_execute(
        "python", "*", File(content="print('tick', flush=True)\nwhile True: pass"), run_timeout=1000
    )
    check("timeout", (out.run.stdout, out.run.code, out.run.signal), ("tick\n", None, "SIGKILL"))

    code = "import sys\nprint('%d.%d' % sys.version_info[:2])"
    out = client.post_execute("python", "3.11", File(content=code))
    check("version 3.11", (out.version, out.run.stdout), ("3.11.0", "3.11\n"))
    out = client.post_execute("python", ">=3.12", File(content=code))
    check("version >=3.12", (out.version, out.run.stdout), ("3.13.0", "3.13\n"))

    try:
        client.post_execute("python", "2.7", File(content="print 1"))
        sys.exit("unknown version: no error raised")
    except BadRequestError as error:
        check("unknown version: 400", error.status_code, 400)


if __name__ == "__main__":
    main(sys.argv[1])
