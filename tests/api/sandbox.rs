//! The sandbox's isolation, observed from inside it. Nothing here sends a
//! packet anywhere: the network checks read the sandbox's own tables.

use crate::helpers::spawn_app;

#[tokio::test]
async fn there_is_no_network_only_loopback_and_no_route() {
    let app = spawn_app().await;
    let answer = app
        .python(concat!(
            "import os, socket\n",
            "print(sorted(os.listdir('/sys/class/net')))\n",
            "routes = open('/proc/net/route').read().splitlines()[1:]\n",
            "print('routes', len(routes))\n",
            "try:\n",
            "    socket.getaddrinfo('example.com', 80)\n",
            "    print('resolved')\n",
            "except socket.gaierror as e:\n",
            "    print('no resolver')\n",
        ))
        .await;
    assert_eq!(
        answer["stdout"], "['lo']\nroutes 0\nno resolver\n",
        "{answer}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_root_filesystem_is_read_only_and_scratch_dirs_are_writable() {
    let app = spawn_app().await;
    let answer = app
        .python(concat!(
            "import os\n",
            "for path in ['/etc/x', '/usr/x', '/x', '/bin/x', '/home/x']:\n",
            "    try:\n",
            "        open(path, 'w')\n",
            "        print(path, 'writable')\n",
            "    except OSError as e:\n",
            "        print(path, e.strerror)\n",
            "for path in ['/tmp/x', '/work/x']:\n",
            "    open(path, 'w').write('ok')\n",
            "    print(path, 'ok')\n",
            "print(os.getcwd())\n",
        ))
        .await;
    let stdout = answer["stdout"].as_str().unwrap();
    for path in ["/etc/x", "/usr/x", "/x", "/bin/x", "/home/x"] {
        assert!(
            stdout.contains(&format!("{path} Read-only file system"))
                || stdout.contains(&format!("{path} Permission denied")),
            "{path}: {stdout}"
        );
    }
    assert!(
        stdout.contains("/tmp/x ok\n/work/x ok\n/work\n"),
        "{stdout}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_program_runs_as_an_unprivileged_user_with_no_capabilities_and_no_new_privileges() {
    let app = spawn_app().await;
    let answer = app
        .python(concat!(
            "import os\n",
            "print(os.getuid(), os.getgid(), os.geteuid())\n",
            "status = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines() if ':\\t' in l)\n",
            "print(status['CapEff'].strip(), status['CapPrm'].strip(), status['CapBnd'].strip())\n",
            "print('nnp', status['NoNewPrivs'].strip(), 'seccomp', status['Seccomp'].strip())\n",
            "try:\n",
            "    os.setuid(0)\n",
            "    print('became root')\n",
            "except PermissionError:\n",
            "    print('setuid refused')\n",
        ))
        .await;
    let stdout = answer["stdout"].as_str().unwrap();
    let (ids, rest) = stdout.split_once('\n').unwrap();
    let ids: Vec<u32> = ids.split(' ').map(|i| i.parse().unwrap()).collect();
    assert!(app.uids.contains(ids[0]), "{answer}");
    assert_eq!(ids, [ids[0]; 3], "user, group and effective user are one");
    assert_eq!(
        rest,
        "0000000000000000 0000000000000000 0000000000000000\nnnp 1 seccomp 2\nsetuid refused\n",
        "{answer}"
    );
    app.stop().await;
}

#[tokio::test]
async fn concurrent_runs_run_as_different_users() {
    let app = spawn_app().await;
    let code = "import os, time\ntime.sleep(0.5)\nprint(os.getuid())";
    let (a, b) = tokio::join!(app.python(code), app.python(code));
    assert_ne!(a["stdout"], b["stdout"], "{a} {b}");
    app.stop().await;
}

#[tokio::test]
async fn the_program_runs_under_its_supervisor_as_the_sandboxs_init() {
    let app = spawn_app().await;
    let answer = app
        .python(
            "import os\nprint(os.getpid() != 1, os.getppid(), open('/proc/1/cmdline').read().split('\\0')[0])",
        )
        .await;
    assert_eq!(
        answer["stdout"], "True 1 /.code-runner/supervise\n",
        "{answer}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_code_is_not_on_any_command_line() {
    let app = spawn_app().await;
    let answer = app
        .python(concat!(
            "# unique_marker_9f3a\n",
            "import os\n",
            "found = []\n",
            "for pid in filter(str.isdigit, os.listdir('/proc')):\n",
            "    try:\n",
            "        found.append('unique_marker' + '_9f3a' in open(f'/proc/{pid}/cmdline').read())\n",
            "    except OSError:\n",
            "        pass\n",
            "print(len(found) >= 2, any(found))\n",
        ))
        .await;
    assert_eq!(answer["stdout"], "True False\n", "{answer}");
    app.stop().await;
}
