"""A client of Piston's interactive endpoint, /api/v2/connect, written from
Piston's documentation (readme.md, "Interactive execution") and the message
sequence of Piston's own CLI (cli/commands/execute.js, `piston run -t`):
one `init` with the CLI's fields and defaults, raw stdin chunks as `data`
messages, Ctrl-C as a `signal` of SIGINT, and the server's close awaited.

Usage: piston_connect.py <base url>. Prints "all checks passed" or fails
with the first difference.
"""

import asyncio
import json
import sys
import time

import websockets

BASE = sys.argv[1].rstrip("/").replace("http", "ws", 1) + "/api/v2/connect"


def init(code, **extra):
    # The CLI's init: cli/commands/execute.js.
    message = {
        "type": "init",
        "language": "python",
        "version": "*",
        "files": [{"name": "main.py", "content": code, "encoding": "utf8"}],
        "args": [],
        "compile_timeout": 10000,
        "run_timeout": 3000,
    }
    message.update(extra)
    return json.dumps(message)


async def session(messages, answer=None, expect_close=None):
    """Sends `messages`, then answers each stdout chunk with `answer(chunk)`
    (a list of messages to send); returns the server's messages and its
    close code and reason."""
    got = []
    async with websockets.connect(BASE) as ws:
        for message in messages:
            try:
                await ws.send(message)
            except websockets.ConnectionClosed:
                # Closed while sending (a frame past the cap: 1009).
                break
        try:
            async for raw in ws:
                message = json.loads(raw)
                got.append(message)
                if answer and message.get("type") == "data":
                    for reply in answer(message):
                        await ws.send(reply)
        except websockets.ConnectionClosed:
            pass
        return got, ws.close_code, ws.close_reason


def check(what, got, wanted):
    if got != wanted:
        raise SystemExit(f"{what}: got {got!r}, wanted {wanted!r}")


async def main():
    # An input() program answered line by line, as the CLI sends stdin.
    code = "name = input('name? ')\nprint('hello', name)\n"
    sent = []

    def answer(message):
        if message["stream"] == "stdout" and "name? " in message["data"] and not sent:
            sent.append(1)
            return [json.dumps({"type": "data", "stream": "stdin", "data": "Ada\n"})]
        return []

    got, code_, reason = await session([init(code)], answer)
    check("close", (code_, reason), (4999, "Job Completed"))
    check("first message", got[0]["type"], "runtime")
    check("runtime language", got[0]["language"], "python")
    check("stage", got[1], {"type": "stage", "stage": "run"})
    stdout = "".join(m["data"] for m in got if m["type"] == "data" and m["stream"] == "stdout")
    check("stdout", stdout, "name? hello Ada\n")
    check("exit", got[-1], {"type": "exit", "stage": "run", "code": 0, "signal": None})

    # Ctrl-C in the CLI: a signal message; the program is stopped by it.
    started = time.monotonic()
    # Short sleeps: CPython acts on a SIGINT that lands just before a
    # sleep begins only when the sleep ends.
    waits = "import time\nprint('ready', flush=True)\nwhile True:\n    time.sleep(0.05)\n"

    def interrupt(message):
        if "ready" in message["data"]:
            return [json.dumps({"type": "signal", "signal": "SIGINT"})]
        return []

    got, code_, reason = await session([init(waits, run_timeout=5000)], interrupt)
    check("close after a signal", (code_, reason), (4999, "Job Completed"))
    exit_ = got[-1]
    check("exit after SIGINT", (exit_["type"], exit_["code"], exit_["signal"]), ("exit", None, "SIGINT"))
    if time.monotonic() - started > 4:
        raise SystemExit("the signal did not stop the program")

    # A run past its run_timeout: exit with SIGKILL, as Piston reports it.
    got, code_, _ = await session([init("while True: pass\n", run_timeout=500)])
    check("timeout close", code_, 4999)
    check("timeout exit", (got[-1]["code"], got[-1]["signal"]), (None, "SIGKILL"))

    # Piston's refusals, with its close codes and reasons.
    async def refused(messages, wanted, wait=0):
        got, code_, reason = await session(messages)
        check(f"close for {messages!r}", (code_, reason), wanted)
        return got

    await refused([], (4001, "Initialization Timeout"))
    await refused([json.dumps({"type": "data", "stream": "stdin", "data": "x"})], (4003, "Not yet initialized"))
    await refused([json.dumps({"type": "signal", "signal": "SIGINT"})], (4003, "Not yet initialized"))
    # Refusals of a frame after init: sent once the program said "up" (a run
    # ended while its container is being created gets it a moment later).
    async def refused_running(message, wanted):
        up = "print('up', flush=True)\ninput()\n"
        sent = []

        def answer(got):
            if got["stream"] == "stdout" and "up" in got["data"] and not sent:
                sent.append(1)
                return [message]
            return []

        _, code_, reason = await session([init(up)], answer)
        check(f"close for {message!r}", (code_, reason), wanted)

    await refused_running(init("x"), (4000, "Already Initialized"))
    await refused_running(json.dumps({"type": "data", "stream": "stdout", "data": "x"}), (4004, "Can only write to stdin"))
    await refused_running(json.dumps({"type": "signal", "signal": "SIGNOPE"}), (4005, "Invalid signal"))
    await refused([init("x" * (2 << 20))], (1009, "a frame is larger than the limit"))
    got = await refused(["{not json"], (4002, "Notified Error"))
    check("bad JSON's error message", got[0]["type"], "error")
    got = await refused([init("x", language="cobol")], (4002, "Notified Error"))
    check("unknown runtime", got, [{"type": "error", "message": "cobol-* runtime is unknown"}])
    got = await refused([json.dumps({"type": "init", "language": "python", "version": "*"})], (4002, "Notified Error"))
    check("no files", got, [{"type": "error", "message": "files is required as an array"}])
    print("all checks passed")


asyncio.run(main())
