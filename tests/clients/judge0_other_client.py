"""A Judge0 client from PyPI other than the official SDK, `judge0-client`
(asynchronous, pydantic models), unchanged but for its URL and key,
against a running code-runner with keys on: its key in X-Auth-Token, its
models of /about (non-null homepage and source), /workers, its /isolate
and /license, a python submission and a multi-file one (language 89) read
back in base64, and a wrong key refused.

Usage: judge0_other_client.py URL KEY   (e.g. http://127.0.0.1:PORT/judge0)
Serves: python (71) and the multi-file program (89). Prints one line per
check; exits non-zero on the first that fails.
"""

import asyncio
import os
import sys

# This folder holds judge0_client.py (the official SDK's checks), which
# would shadow the package of the same name: import from the venv.
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

from judge0_client import (  # noqa: E402
    AboutResponse,
    Judge0Client,
    Judge0Error,
    MultiFileSubmission,
    SingleFileSubmission,
    SubmissionStatusId,
)


def check(name, got, expected):
    if got != expected:
        sys.exit(f"{name}: expected {expected!r}, got {got!r}")
    print(f"ok {name}")


async def finished(client, token):
    """Polls a submission until it has a result (at most 60 s)."""
    for _ in range(600):
        detail = await client.get_submission(token)
        if detail.status.id not in (SubmissionStatusId.IN_QUEUE, SubmissionStatusId.PROCESSING):
            return detail
        await asyncio.sleep(0.1)
    sys.exit(f"{token} did not finish")


async def main(url, key):
    async with Judge0Client(base_url=url, auth_token=key, timeout=30) as client:
        about = await client.get_about()
        check("about, as its model reads it", isinstance(about, AboutResponse), True)
        check("about: the version", about.version, "1.13.1")
        check("about: a homepage and a source", (bool(about.homepage), bool(about.source_code)), (True, True))

        workers = await client.get_workers()
        check("workers: one queue", [w.queue for w in workers], ["1.13.1"])
        check("workers: this service's", workers[0].available, 2)

        isolate = await client.get_isolate()
        check("isolate: the sandbox, in words", "Docker container" in isolate, True)
        license = await client.get_license()
        check("license: as Cargo.toml names it", "license" in license, True)

        created = await client.create_submission(
            SingleFileSubmission(source_code="print(input()[::-1])", language_id=71, stdin="olleh")
        )
        detail = await finished(client, created.token)
        check("python, in base64", (detail.status.id, detail.stdout), (SubmissionStatusId.ACCEPTED, "hello\n"))

        created = await client.create_submission(
            MultiFileSubmission(
                additional_files={
                    "compile": "gcc -O2 -o sum sum.c\n",
                    "run": "./sum\n",
                    "sum.c": '#include <stdio.h>\nint main(void) { int a, b; scanf("%d %d", &a, &b); printf("%d\\n", a + b); }\n',
                },
                stdin="20 22",
                expected_output="42",
            )
        )
        detail = await finished(client, created.token)
        check("multi-file, compiled and run", (detail.status.id, detail.stdout), (SubmissionStatusId.ACCEPTED, "42\n"))

    async with Judge0Client(base_url=url, auth_token="not-a-key") as client:
        try:
            await client.get_about()
            sys.exit("a wrong key was let in")
        except Judge0Error as e:
            check("a wrong key is refused", str(e).startswith("HTTP 401"), True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
