"""Judge0's official Python SDK (`judge0` on PyPI), unchanged but for its
URL, against a running code-runner: python and C++ sources, stdin,
expected output (Accepted and Wrong Answer), a compile error, a time limit,
a runtime error, test cases, and the asynchronous submit-then-wait path.

Usage: judge0_client.py URL   (e.g. http://127.0.0.1:PORT/judge0)
Serves: python (71) and C++ (52). Prints one line per check; exits
non-zero on the first that fails.
"""

import sys

import judge0
from judge0 import Client, Status, Submission, TestCase


def check(name, got, expected):
    if got != expected:
        sys.exit(f"{name}: expected {expected!r}, got {got!r}")
    print(f"ok {name}")


def main(url):
    # Always with client= and language=: without them the SDK may turn to
    # Judge0's hosted service.
    client = Client(url)
    check("about: the version the SDK maps languages by", client.version, "1.13.1")

    r = judge0.run(
        client=client,
        source_code="print(f'hello, {input()}')",
        language=judge0.PYTHON,
        stdin="judge0",
        expected_output="hello, judge0",
    )
    check("python, stdin, expected output", (r.status, r.stdout), (Status.ACCEPTED, "hello, judge0\n"))
    check("time is a float in seconds", isinstance(r.time, float) and 0 <= r.time < 5, True)
    check("memory in KiB", isinstance(r.memory, int) and r.memory > 1000, True)

    r = judge0.run(client=client, source_code="print('hello')", language=judge0.PYTHON, expected_output="bye")
    check("wrong answer", r.status, Status.WRONG_ANSWER)

    cpp = '#include <iostream>\nint main(){int a,b;std::cin>>a>>b;std::cout<<a+b<<"\\n";}\n'
    r = judge0.run(client=client, source_code=cpp, language=judge0.CPP, stdin="2 3", expected_output="5")
    check("C++", (r.status, r.stdout), (Status.ACCEPTED, "5\n"))

    r = judge0.run(client=client, source_code="int main( { return 0; }", language=judge0.CPP)
    check("compile error", r.status, Status.COMPILATION_ERROR)
    check("compile error: the compiler's words", "error" in (r.compile_output or ""), True)
    check("compile error: nothing ran", (r.stdout, r.time), (None, None))

    r = judge0.run(
        client=client, source_code="while True: pass", language=judge0.PYTHON,
        cpu_time_limit=1, wall_time_limit=5,
    )
    check("time limit", r.status, Status.TIME_LIMIT_EXCEEDED)

    r = judge0.run(client=client, source_code="import sys; sys.exit(3)", language=judge0.PYTHON)
    check("runtime error", (r.status, r.exit_code), (Status.RUNTIME_ERROR_NZEC, 3))

    subs = judge0.run(
        client=client,
        source_code="print(int(input()) * 2)",
        language=judge0.PYTHON,
        test_cases=[("1", "2"), TestCase("5", "10"), {"input": "7", "expected_output": "15"}],
    )
    check(
        "test cases",
        [s.status for s in subs],
        [Status.ACCEPTED, Status.ACCEPTED, Status.WRONG_ANSWER],
    )

    s = judge0.async_run(
        client=client, source_code="import time; time.sleep(0.5); print('late')", language=judge0.PYTHON
    )
    check("async: a token at once", (s.token is not None, s.status), (True, None))
    s = judge0.wait(client=client, submissions=s)
    check("async: then the result", (s.status, s.stdout), (Status.ACCEPTED, "late\n"))
    check("async: its times", s.finished_at >= s.created_at, True)

    res = judge0.run(
        client=client,
        submissions=[
            Submission(source_code="print('a')", language=judge0.PYTHON),
            Submission(source_code='#include <cstdio>\nint main(){puts("b");}', language=judge0.CPP),
        ],
    )
    check("several submissions", [(x.status, x.stdout) for x in res], [(Status.ACCEPTED, "a\n"), (Status.ACCEPTED, "b\n")])


if __name__ == "__main__":
    main(sys.argv[1])
