'use strict';
// code-runner's pre-start hook for Node.js (docs/performance.md: "Pre-started
// interpreters").
//
// A pooled sandbox starts the language's own run command with this file
// preloaded (`node -r /.code-runner/prestart/node.js main.js`) before the
// program exists, with CODE_RUNNER_PRESTART=<go fd>:<ready fd> in its
// environment. Node loads the preload after its own start-up and before it
// resolves the main module; here the hook says it is ready and waits. When
// the run's files are written, the supervisor sends the run's arguments
// (each ending in a NUL byte) on the go pipe and closes it: they are
// appended to process.argv, the hook removes its traces (its environment,
// its `-r` in process.execArgv, its module in require.cache) and returns,
// so that Node goes on exactly as `node main.js args...` would. Without
// CODE_RUNNER_PRESTART (a node the program starts) it does nothing.
(() => {
  const fds = process.env.CODE_RUNNER_PRESTART;
  for (let i = 0; i < process.execArgv.length; i++) {
    const arg = process.execArgv[i];
    if ((arg === '-r' || arg === '--require') && process.execArgv[i + 1] === __filename) {
      process.execArgv.splice(i, 2);
      break;
    }
    if (arg === `--require=${__filename}`) {
      process.execArgv.splice(i, 1);
      break;
    }
  }
  delete require.cache[__filename];
  if (fds === undefined) {
    return;
  }
  delete process.env.CODE_RUNNER_PRESTART;
  const fs = require('fs');
  const [go, ready] = fds.split(':').map(Number);
  fs.writeSync(ready, 'r');
  fs.closeSync(ready);
  const chunks = [];
  const buffer = Buffer.alloc(65536);
  for (;;) {
    let n;
    try {
      n = fs.readSync(go, buffer, 0, buffer.length, null);
    } catch (e) {
      if (e.code === 'EAGAIN') {
        continue;
      }
      throw e;
    }
    if (n === 0) {
      break;
    }
    chunks.push(Buffer.from(buffer.subarray(0, n)));
  }
  fs.closeSync(go);
  const data = Buffer.concat(chunks);
  let start = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] === 0) {
      process.argv.push(data.subarray(start, i).toString('utf8'));
      start = i + 1;
    }
  }
})();
