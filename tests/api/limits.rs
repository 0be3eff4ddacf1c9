//! Every limit is enforced, reported with its own status, and keeps the
//! output written before it was hit.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_busy_loop_is_stopped_at_the_deadline_with_its_output_kept() {
    let app = spawn_app().await;
    let answer = app
        .run_ok(json!({
            "language": "python",
            "code": "print('started', flush=True)\nwhile True: pass",
            "timeout_ms": 1500,
        }))
        .await;
    assert_eq!(answer["status"], "timeout");
    assert_eq!(answer["stdout"], "started\n");
    assert_eq!(answer["signal"], "SIGKILL");
    let ms = answer["duration_ms"].as_u64().unwrap();
    assert!((1500..2500).contains(&ms), "stopped after {ms} ms");
    assert_eq!(
        answer["error"],
        "Time limit exceeded: the program was still running after 1500 ms and was stopped."
    );
    app.stop().await;
}

#[tokio::test]
async fn sleeping_with_sigterm_ignored_still_ends_at_the_deadline() {
    let app = spawn_app().await;
    let answer = app
        .run_ok(json!({
            "language": "python",
            "code": "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(3600)",
            "timeout_ms": 1000,
        }))
        .await;
    assert_eq!(answer["status"], "timeout");
    assert!(answer["duration_ms"].as_u64().unwrap() < 2000, "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn a_memory_bomb_ends_as_memory_limit_not_timeout() {
    let app = spawn_app().await;
    let answer = app
        .python(
            "print('before', flush=True)\na = []\nwhile True:\n    a.append(bytearray(8 << 20))",
        )
        .await;
    assert_eq!(answer["status"], "memory_limit", "{answer}");
    assert_eq!(answer["stdout"], "before\n");
    assert!(answer["duration_ms"].as_u64().unwrap() < 5000, "{answer}");
    assert_eq!(
        answer["error"],
        "Memory limit exceeded: the program needed more than 128 MiB and was killed."
    );
    app.stop().await;
}

#[tokio::test]
async fn a_memory_bomb_in_a_child_process_is_caught_too() {
    let app = spawn_app().await;
    let answer = app
        .python("import subprocess, sys\nr = subprocess.run([sys.executable, '-c', 'a = bytearray(512 << 20)'])\nprint('child', r.returncode)")
        .await;
    assert_eq!(answer["status"], "memory_limit", "{answer}");
    assert_eq!(answer["stdout"], "child -9\n");
    app.stop().await;
}

#[tokio::test]
async fn an_output_flood_keeps_exactly_the_cap_and_ends_early() {
    let app = spawn_app().await;
    let started = Instant::now();
    let answer = app.python("while True:\n    print('x' * 999)").await;
    assert_eq!(answer["status"], "output_limit");
    assert_eq!(answer["truncated"], true);
    let stdout = answer["stdout"].as_str().unwrap();
    assert_eq!(stdout.len(), 65536);
    assert!(stdout.starts_with(&format!("{}\n", "x".repeat(999))));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the flood ran {:?}, near its 10 s deadline",
        started.elapsed()
    );
    assert_eq!(
        answer["error"],
        "Output limit exceeded: the program wrote more than 65536 bytes to stdout and was stopped."
    );
    app.stop().await;
}

#[tokio::test]
async fn a_stderr_flood_without_newlines_is_capped_too() {
    let app = spawn_app().await;
    let answer = app
        .python("import sys\nwhile True:\n    sys.stderr.write('e' * 4096)")
        .await;
    assert_eq!(answer["status"], "output_limit");
    assert_eq!(answer["stderr"].as_str().unwrap().len(), 65536);
    assert_eq!(answer["stdout"], "");
    assert!(answer["error"].as_str().unwrap().contains("to stderr"));
    app.stop().await;
}

#[tokio::test]
async fn a_multibyte_character_cut_at_the_cap_is_dropped_whole() {
    let app = spawn_app().await;
    // 65535 ASCII bytes then a 3-byte character: the cap falls inside it.
    let answer = app
        .python("import sys\nsys.stdout.write('a' * 65535 + '€' * 10)")
        .await;
    assert_eq!(answer["status"], "output_limit");
    let stdout = answer["stdout"].as_str().unwrap();
    assert_eq!(stdout, "a".repeat(65535));
    app.stop().await;
}

#[tokio::test]
async fn a_fork_bomb_is_contained_and_a_run_beside_it_is_unharmed() {
    let app = spawn_app().await;
    let bomb = app.run_ok(json!({
        "language": "python",
        "code": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
        "timeout_ms": 4000,
    }));
    let benign = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = Instant::now();
        let answer = app.python("print(sum(range(1000)))").await;
        (answer, started.elapsed())
    };
    let (bomb, (benign, benign_took)) = tokio::join!(bomb, benign);
    assert_eq!(bomb["status"], "timeout", "{bomb}");
    assert_eq!(benign["stdout"], "499500\n");
    assert!(
        benign_took < Duration::from_secs(3),
        "benign run took {benign_took:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_process_limit_holds() {
    let app = spawn_app().await;
    let answer = app
        .python("import threading, time\nn = 0\ntry:\n    while True:\n        threading.Thread(target=time.sleep, args=(5,), daemon=True).start()\n        n += 1\nexcept RuntimeError:\n    print('stopped at', n < 64)")
        .await;
    assert_eq!(answer["stdout"], "stopped at True\n", "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn scratch_space_is_capped_by_size_and_by_file_count() {
    let app = spawn_app().await;
    let answer = app
        .python("import errno\ntry:\n    with open('/tmp/big', 'wb') as f:\n        for _ in range(64):\n            f.write(b'0' * (1 << 20))\n    print('no limit')\nexcept OSError as e:\n    print('refused', errno.errorcode[e.errno])")
        .await;
    // The file-size rlimit (SIGXFSZ ignored by python: EFBIG) or the tmpfs
    // size (ENOSPC) stops it at 32 MiB.
    let stdout = answer["stdout"].as_str().unwrap();
    assert!(
        stdout == "refused EFBIG\n" || stdout == "refused ENOSPC\n",
        "{answer}"
    );
    let answer = app
        .python("import os\nn = 0\ntry:\n    while True:\n        open(f'/work/f{n}', 'w').close()\n        n += 1\nexcept OSError as e:\n    print('refused after', n < 5000, e.strerror)")
        .await;
    assert_eq!(
        answer["stdout"], "refused after True No space left on device\n",
        "{answer}"
    );
    app.stop().await;
}

#[tokio::test]
async fn open_files_are_capped() {
    let app = spawn_app().await;
    let answer = app
        .python("files = []\ntry:\n    while True:\n        files.append(open('/dev/null'))\nexcept OSError as e:\n    print(len(files) < 256, e.strerror)")
        .await;
    assert_eq!(answer["stdout"], "True Too many open files\n", "{answer}");
    app.stop().await;
}
