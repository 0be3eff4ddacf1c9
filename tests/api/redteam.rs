//! The red-team suite: every program of the attack catalogue in
//! `../shared/notes/sandbox-facts.md` ("Adversarial programs every runner
//! should survive"), each asserting its exact safe outcome, in python and,
//! where it means something else there, in C.
//!
//! Attacks tested elsewhere, next to the limit they exercise:
//! busy loop, sleep forever with SIGTERM ignored, memory bomb (also in a
//! child), output floods on stdout with newlines and on stderr without,
//! a multi-byte character cut at the cap, fork bomb, thread bomb, a large
//! file in `/tmp`, many files in `/work`, thousands of open files
//! (`limits.rs`); self-SIGKILL, binary and invalid UTF-8 output, NUL bytes
//! in code, `input()` with no stdin (`run.rs`); writes outside the scratch
//! dirs, `setuid(0)`, the no-network checks (`sandbox.rs`); C fork bomb,
//! C busy loop, Java memory bomb (`catalogue.rs`).

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_catalogue_app};

/// Runs `attack` and, 300 ms into it, a benign run beside it, which must
/// finish correctly and in normal time; returns the attack's answer.
async fn with_a_benign_run_beside(app: &TestApp, attack: impl Future<Output = Value>) -> Value {
    let benign = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        let answer = app.python("print(sum(range(10)))").await;
        (answer, started.elapsed())
    };
    let (attacked, (benign, took)) = tokio::join!(attack, benign);
    assert_eq!(benign["stdout"], "45\n", "{benign}");
    assert_eq!(benign["status"], "ok");
    assert!(
        took < Duration::from_secs(3),
        "the benign run took {took:?}"
    );
    attacked
}

async fn c(app: &TestApp, code: &str, timeout_ms: u64) -> Value {
    app.run_ok(json!({"language": "c", "code": code, "timeout_ms": timeout_ms}))
        .await
}

#[tokio::test]
async fn a_memory_bomb_leaves_a_run_beside_it_unharmed() {
    let app = spawn_app().await;
    let bomb = app.python("a = []\nwhile True:\n    a.append(bytearray(16 << 20))");
    let answer = with_a_benign_run_beside(&app, bomb).await;
    assert_eq!(answer["status"], "memory_limit", "{answer}");
    assert_eq!(answer["exit_code"], 137);
    app.stop().await;
}

#[tokio::test]
async fn an_output_flood_leaves_a_run_beside_it_unharmed() {
    let app = spawn_app().await;
    let flood = app.python("import sys\nwhile True:\n    sys.stdout.write('y' * 8192)");
    let answer = with_a_benign_run_beside(&app, flood).await;
    assert_eq!(answer["status"], "output_limit", "{answer}");
    assert_eq!(answer["stdout"].as_str().unwrap().len(), 65536);
    assert!(
        answer["stdout"]
            .as_str()
            .unwrap()
            .bytes()
            .all(|b| b == b'y')
    );
    app.stop().await;
}

#[tokio::test]
async fn an_stdout_flood_without_newlines_and_an_stderr_flood_with_them_are_capped() {
    let app = spawn_app().await;
    let started = Instant::now();
    let (out, err) = tokio::join!(
        app.python("import sys\nwhile True:\n    sys.stdout.write('o' * 100000)"),
        app.python("import sys\nwhile True:\n    print('e' * 99, file=sys.stderr)"),
    );
    assert_eq!(out["status"], "output_limit");
    assert_eq!(out["stdout"].as_str().unwrap().len(), 65536);
    assert_eq!(err["status"], "output_limit");
    assert_eq!(err["stderr"].as_str().unwrap().len(), 65536);
    assert!(err["error"].as_str().unwrap().contains("to stderr"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    app.stop().await;
}

#[tokio::test]
async fn a_gigabyte_file_is_stopped_at_the_scratch_size_in_tmp_and_in_work() {
    let app = spawn_app().await;
    for dir in ["/tmp", "/work"] {
        let answer = app
            .python(&format!(
                "import os\nchunk = b'0' * (1 << 20)\nwritten = 0\ntry:\n    with open('{dir}/big', 'wb') as f:\n        while written < (1 << 30):\n            f.write(chunk)\n            f.flush()\n            written += len(chunk)\nexcept OSError as e:\n    print(e.strerror)\nprint(os.path.getsize('{dir}/big') <= 32 << 20)"
            ))
            .await;
        let stdout = answer["stdout"].as_str().unwrap();
        assert!(
            stdout == "File too large\nTrue\n" || stdout == "No space left on device\nTrue\n",
            "{dir}: {answer}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_gigabyte_file_from_c_is_killed_by_sigxfsz() {
    let app = spawn_catalogue_app().await;
    let answer = c(
        &app,
        "#include <stdio.h>\n#include <string.h>\nint main(void) { static char b[1 << 20]; memset(b, 1, sizeof b); FILE *f = fopen(\"big\", \"w\"); for (int i = 0; i < 1024; i++) { fwrite(b, 1, sizeof b, f); fflush(f); } puts(\"wrote a gigabyte\"); }",
        5000,
    )
    .await;
    assert_eq!(answer["status"], "runtime_error", "{answer}");
    assert_eq!(answer["signal"], "SIGXFSZ");
    assert_eq!(answer["exit_code"], 153);
    assert_eq!(answer["stdout"], "");
    app.stop().await;
}

#[tokio::test]
async fn millions_of_small_files_run_out_of_inodes_in_tmp() {
    let app = spawn_app().await;
    let answer = app
        .python("n = 0\ntry:\n    while n < 1_000_000:\n        open(f'/tmp/f{n}', 'w').close()\n        n += 1\nexcept OSError as e:\n    print(n < 5000, e.strerror)")
        .await;
    assert_eq!(
        answer["stdout"], "True No space left on device\n",
        "{answer}"
    );
    app.stop().await;
}

#[tokio::test]
async fn network_attempts_fail_inside_the_sandbox() {
    let app = spawn_app().await;
    let answer = app
        .python(concat!(
            "import socket\n",
            "try:\n",
            "    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)\n",
            "    print('raw socket')\n",
            "except PermissionError:\n",
            "    print('raw refused')\n",
            "try:\n",
            "    socket.create_connection(('127.0.0.1', 9), timeout=2)\n",
            "except ConnectionRefusedError:\n",
            "    print('loopback only, nothing listening')\n",
            "try:\n",
            "    socket.create_connection(('example.com', 80), timeout=2)\n",
            "except socket.gaierror:\n",
            "    print('no name resolution')\n",
        ))
        .await;
    assert_eq!(
        answer["stdout"], "raw refused\nloopback only, nothing listening\nno name resolution\n",
        "{answer}"
    );
    app.stop().await;
}

#[tokio::test]
async fn proc_and_sys_neither_leak_the_host_nor_accept_writes() {
    let app = spawn_app().await;
    let answer = app
        .python(concat!(
            "import os\n",
            "pids = [p for p in os.listdir('/proc') if p.isdigit()]\n",
            "print('pids', len(pids) < 10)\n",
            "for path in ['/proc/sys/kernel/hostname', '/proc/sysrq-trigger', '/sys/kernel/mm/transparent_hugepage/enabled', '/proc/sys/vm/drop_caches']:\n",
            "    try:\n",
            "        with open(path, 'w') as f:\n",
            "            f.write('1')\n",
            "        print(path, 'written')\n",
            "    except OSError as e:\n",
            "        print(path, 'refused')\n",
            "try:\n",
            "    print('kcore', len(open('/proc/kcore', 'rb').read(16)))\n",
            "except OSError:\n",
            "    print('kcore', 0)\n",
            "print('hostname', open('/proc/sys/kernel/hostname').read().strip())\n",
        ))
        .await;
    assert_eq!(
        answer["stdout"],
        concat!(
            "pids True\n",
            "/proc/sys/kernel/hostname refused\n",
            "/proc/sysrq-trigger refused\n",
            "/sys/kernel/mm/transparent_hugepage/enabled refused\n",
            "/proc/sys/vm/drop_caches refused\n",
            "kcore 0\n",
            "hostname sandbox\n",
        ),
        "{answer}"
    );
    app.stop().await;
}

#[tokio::test]
async fn mount_unshare_chroot_and_mknod_are_refused() {
    let app = spawn_app().await;
    let answer = app
        .python(concat!(
            "import ctypes, os, stat\n",
            "libc = ctypes.CDLL(None, use_errno=True)\n",
            "r = libc.mount(b'tmpfs', b'/tmp', b'tmpfs', 0, None)\n",
            "print('mount', r, os.strerror(ctypes.get_errno()))\n",
            "for name, call in [\n",
            "    ('unshare', lambda: os.unshare(os.CLONE_NEWUSER | os.CLONE_NEWNS)),\n",
            "    ('chroot', lambda: os.chroot('/tmp')),\n",
            "    ('mknod', lambda: os.mknod('/tmp/mem', stat.S_IFCHR | 0o600, os.makedev(1, 1))),\n",
            "    ('setgid', lambda: os.setgid(0)),\n",
            "]:\n",
            "    try:\n",
            "        call()\n",
            "        print(name, 'allowed')\n",
            "    except PermissionError:\n",
            "        print(name, 'refused')\n",
        ))
        .await;
    assert_eq!(
        answer["stdout"],
        "mount -1 Operation not permitted\nunshare refused\nchroot refused\nmknod refused\nsetgid refused\n",
        "{answer}"
    );
    app.stop().await;
}

#[tokio::test]
async fn setuid_and_mount_from_c_are_refused() {
    let app = spawn_catalogue_app().await;
    let answer = c(
        &app,
        "#include <stdio.h>\n#include <unistd.h>\n#include <sys/mount.h>\nint main(void) { printf(\"%d %d %d\\n\", setuid(0), mount(\"none\", \"/tmp\", \"tmpfs\", 0, 0), geteuid()); }",
        5000,
    )
    .await;
    let stdout = answer["stdout"].as_str().unwrap();
    let euid: u32 = stdout.trim().rsplit(' ').next().unwrap().parse().unwrap();
    assert!(stdout.starts_with("-1 -1 "), "{answer}");
    assert!(app.uids.contains(euid), "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn killing_pid_1_or_every_process_spares_the_supervisor_and_reaches_only_the_sandbox() {
    let app = spawn_app().await;
    let answer = app
        .python(concat!(
            "import os, signal, subprocess\n",
            "os.kill(1, signal.SIGKILL)\n",
            "print('init survived', flush=True)\n",
            "child = subprocess.Popen(['sleep', '30'])\n",
            "os.kill(-1, signal.SIGKILL)\n",
            "print('child', child.wait(), flush=True)\n",
            "print('supervisor survived', flush=True)\n",
        ))
        .await;
    // PID 1 is the supervisor, which no signal from the sandbox reaches;
    // kill(-1) reaches every other process of the sandbox's user in its
    // own pid namespace but the caller: the child. The supervisor then
    // reports the program's own end, with its figures.
    assert_eq!(answer["status"], "ok", "{answer}");
    assert_eq!(
        answer["stdout"], "init survived\nchild -9\nsupervisor survived\n",
        "{answer}"
    );
    assert!(answer["cpu_time_ms"].as_u64().is_some(), "{answer}");
    assert!(answer["duration_ms"].as_u64().unwrap() < 5000, "{answer}");
    // Nothing outside it was touched: the service and its next run are fine.
    assert_eq!(app.python("print('alive')").await["stdout"], "alive\n");
    app.stop().await;
}

#[tokio::test]
async fn kill_minus_one_from_c_only_reaches_the_sandbox() {
    let app = spawn_catalogue_app().await;
    let answer = c(
        &app,
        "#include <stdio.h>\n#include <signal.h>\n#include <unistd.h>\nint main(void) { puts(\"before\"); fflush(stdout); kill(-1, SIGKILL); puts(\"after\"); }",
        5000,
    )
    .await;
    // Every process but the caller and the supervisor (PID 1): the program
    // goes on, and its supervisor reports its end.
    assert_eq!(answer["status"], "ok", "{answer}");
    assert_eq!(answer["stdout"], "before\nafter\n");
    assert!(answer["duration_ms"].as_u64().unwrap() < 5000, "{answer}");
    // The service and its other runs are untouched.
    assert_eq!(app.python("print('alive')").await["stdout"], "alive\n");
    app.stop().await;
}

#[tokio::test]
async fn stopping_itself_with_sigstop_still_ends_at_the_deadline() {
    let app = spawn_app().await;
    let answer = app
        .run_ok(json!({
            "language": "python",
            "code": "import os, signal\nprint('stopping', flush=True)\nos.kill(os.getpid(), signal.SIGSTOP)\nprint('resumed')",
            "timeout_ms": 1000,
        }))
        .await;
    assert_eq!(answer["status"], "timeout", "{answer}");
    assert_eq!(answer["stdout"], "stopping\n");
    assert!(answer["duration_ms"].as_u64().unwrap() < 2000);
    app.stop().await;
}

#[tokio::test]
async fn closing_stdout_and_stderr_then_looping_is_a_timeout_not_a_success() {
    let app = spawn_app().await;
    let answer = app
        .run_ok(json!({
            "language": "python",
            "code": "import os\nprint('closing', flush=True)\nos.close(1)\nos.close(2)\nwhile True: pass",
            "timeout_ms": 1000,
        }))
        .await;
    assert_eq!(answer["status"], "timeout", "{answer}");
    assert_eq!(answer["stdout"], "closing\n");
    let ms = answer["duration_ms"].as_u64().unwrap();
    assert!((1000..2000).contains(&ms), "{ms}");
    app.stop().await;
}

#[tokio::test]
async fn closing_stdout_from_c_then_looping_is_a_timeout() {
    let app = spawn_catalogue_app().await;
    let answer = c(
        &app,
        "#include <unistd.h>\nint main(void) { close(1); close(2); for (volatile int i = 0;; i++); }",
        1000,
    )
    .await;
    assert_eq!(answer["status"], "timeout", "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn a_double_forked_daemon_dies_with_the_program() {
    let app = spawn_app().await;
    let started = Instant::now();
    let answer = app
        .python(concat!(
            "import os, sys, time\n",
            "if os.fork() == 0:\n",
            "    os.setsid()\n",
            "    if os.fork() == 0:\n",
            "        while True:\n",
            "            time.sleep(1)\n",
            "    os._exit(0)\n",
            "os.wait()\n",
            "print('parent done')\n",
        ))
        .await;
    assert_eq!(answer["status"], "ok", "{answer}");
    assert_eq!(answer["stdout"], "parent done\n");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    app.assert_no_containers_within(Duration::from_secs(2))
        .await;
    app.stop().await;
}

#[tokio::test]
async fn orphaned_zombies_are_reaped_by_init_and_nothing_outlives_the_run() {
    let app = spawn_app().await;
    // A child forks 40 grandchildren that exit at once, and exits without
    // waiting for them: the orphans go to the sandbox's init, which must
    // reap them; the program then counts the zombies left.
    let answer = app
        .python(concat!(
            "import os, time\n",
            "def zombies():\n",
            "    n = 0\n",
            "    for p in filter(str.isdigit, os.listdir('/proc')):\n",
            "        try:\n",
            "            n += open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split()[0] == 'Z'\n",
            "        except OSError:\n",
            "            pass\n",
            "    return n\n",
            "child = os.fork()\n",
            "if child == 0:\n",
            "    for _ in range(40):\n",
            "        if os.fork() == 0:\n",
            "            os._exit(0)\n",
            "    time.sleep(0.3)\n",
            "    os._exit(0)\n",
            "time.sleep(0.1)\n",
            "print('before their parent exits', zombies() >= 40, flush=True)\n",
            "os.waitpid(child, 0)\n",
            "time.sleep(0.3)\n",
            "print('after init reaped them', zombies())\n",
        ))
        .await;
    assert_eq!(answer["status"], "ok", "{answer}");
    assert_eq!(
        answer["stdout"], "before their parent exits True\nafter init reaped them 0\n",
        "{answer}"
    );
    // Nothing of the run outlives it.
    app.assert_no_containers_within(Duration::from_secs(3))
        .await;
    assert_eq!(app.python("print('clean')").await["stdout"], "clean\n");
    app.stop().await;
}

#[tokio::test]
async fn ten_mebibytes_of_code_are_refused_before_any_container() {
    let app = spawn_app().await;
    let (status, body) = app
        .run(json!({"language": "python", "code": "#".repeat(10 << 20)}))
        .await;
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (413, "body_too_large")
    );
    assert!(app.containers().await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn the_process_limit_is_per_sandbox_not_per_user() {
    // glot's nproc ulimit counts every process of a uid on the host, so
    // runs starve each other; a pids cgroup per container does not.
    let app = spawn_app().await;
    let threads = "import threading, time\nts = [threading.Thread(target=time.sleep, args=(1,)) for _ in range(50)]\nfor t in ts: t.start()\nfor t in ts: t.join()\nprint('50 threads')";
    let (a, b, c) = tokio::join!(
        app.python(threads),
        app.python(threads),
        app.python(threads)
    );
    for answer in [a, b, c] {
        assert_eq!(answer["stdout"], "50 threads\n", "{answer}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_memory_bomb_in_c_ends_as_memory_limit() {
    let app = spawn_catalogue_app().await;
    let answer = c(
        &app,
        "#include <stdlib.h>\n#include <string.h>\nint main(void) { for (;;) { char *p = malloc(1 << 20); if (!p) return 2; memset(p, 1, 1 << 20); } }",
        5000,
    )
    .await;
    assert_eq!(answer["status"], "memory_limit", "{answer}");
    assert!(answer["duration_ms"].as_u64().unwrap() < 5000);
    app.stop().await;
}

#[tokio::test]
async fn an_output_flood_from_c_is_capped() {
    let app = spawn_catalogue_app().await;
    let answer = c(
        &app,
        "#include <stdio.h>\nint main(void) { for (;;) putchar('z'); }",
        5000,
    )
    .await;
    assert_eq!(answer["status"], "output_limit", "{answer}");
    assert_eq!(answer["stdout"].as_str().unwrap().len(), 65536);
    assert!(answer["duration_ms"].as_u64().unwrap() < 5000);
    app.stop().await;
}

#[tokio::test]
async fn after_a_volley_of_attacks_the_service_answers_at_normal_speed() {
    let app = spawn_app().await;
    let attacks = [
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
        "a = []\nwhile True:\n    a.append(bytearray(16 << 20))",
        "while True:\n    print('x' * 1000)",
        "import os\nos.close(1)\nos.close(2)\nwhile True: pass",
    ];
    let volley =
        futures_util::future::join_all(attacks.iter().map(|code| {
            app.run_ok(json!({"language": "python", "code": code, "timeout_ms": 2000}))
        }))
        .await;
    let statuses: Vec<&str> = volley
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["timeout", "memory_limit", "output_limit", "timeout"]
    );
    let started = Instant::now();
    assert_eq!(app.python("print('normal')").await["stdout"], "normal\n");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    app.stop().await;
}
