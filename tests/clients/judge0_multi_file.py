"""Judge0's official Python SDK (`judge0` on PyPI), unchanged but for its
URL and key, running Judge0's multi-file program (language 89) against a
running code-runner: a `compile` script that runs make (gcc and g++), a
`run` script that runs what it built and python3, a compile error, a run
without a compile script, and a time limit.

Usage: judge0_multi_file.py URL KEY   (e.g. http://127.0.0.1:PORT/judge0)
The key goes in Judge0's own header, X-Auth-Token. Prints one line per
check; exits non-zero on the first that fails.
"""

import sys

import judge0
from judge0 import Client, File, Filesystem, Status, Submission


def check(name, got, expected):
    if got != expected:
        sys.exit(f"{name}: expected {expected!r}, got {got!r}")
    print(f"ok {name}")


def files(**named):
    return Filesystem(content=[File(name=name, content=content) for name, content in named.items()])


MAKEFILE = """\
all: greet twice
greet: greet.c
\tgcc -O2 -o greet greet.c
twice: twice.cpp
\tg++ -O2 -o twice twice.cpp
"""

GREET = '#include <stdio.h>\nint main(void) { char name[32]; scanf("%31s", name); printf("hello, %s\\n", name); return 0; }\n'
TWICE = '#include <iostream>\n#include <cstdlib>\nint main(int argc, char **argv) { std::cout << 2 * std::atoi(argv[1]) << "\\n"; }\n'


def multi_file(additional_files, **extra):
    # Always with client= and language=: without them the SDK may turn to
    # Judge0's hosted service. No source code: the scripts are the zip's.
    return Submission(source_code="", language=judge0.MULTI_FILE, additional_files=additional_files, **extra)


def main(url, key):
    client = Client(url, headers={"X-Auth-Token": key})
    check("about: the version the SDK maps languages by", client.version, "1.13.1")
    check("language 89 is the multi-file program", client.get_language_id(judge0.MULTI_FILE), 89)
    check("and it is served", client.is_language_supported(judge0.MULTI_FILE), True)

    built = files(
        compile="make",
        run='./greet\n./twice 21\npython3 -c "print(6 * 7)"\n',
        Makefile=MAKEFILE,
        **{"greet.c": GREET, "twice.cpp": TWICE},
    )
    r = judge0.run(client=client, submissions=multi_file(built, stdin="judge0", expected_output="hello, judge0\n42\n42"))
    check("compile with make (gcc, g++), then run", (r.status, r.stdout), (Status.ACCEPTED, "hello, judge0\n42\n42\n"))
    check("make's words are the compile output", "gcc -O2 -o greet greet.c" in (r.compile_output or ""), True)
    check("and its time and memory", (isinstance(r.time, float), r.memory > 0), (True, True))

    broken = files(compile="gcc -o main main.c", run="./main\n", **{"main.c": "int main( { }\n"})
    r = judge0.run(client=client, submissions=multi_file(broken))
    check("a compile script that fails", r.status, Status.COMPILATION_ERROR)
    check("with gcc's words", "error" in (r.compile_output or ""), True)
    check("and nothing ran", (r.stdout, r.time), (None, None))

    r = judge0.run(client=client, submissions=multi_file(files(run="echo no compile script; bash --version | head -n 1\n")))
    check("no compile script: run alone", (r.status, r.stdout.splitlines()[0]), (Status.ACCEPTED, "no compile script"))
    check("run by bash", r.stdout.splitlines()[1].startswith("GNU bash, version 5.2"), True)

    r = judge0.run(
        client=client,
        submissions=multi_file(files(run="while :; do :; done\n"), cpu_time_limit=1, wall_time_limit=5),
    )
    check("the sandbox's limits hold", r.status, Status.TIME_LIMIT_EXCEEDED)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
