#!/usr/bin/env python3
"""Derives code-runner's seccomp profile (seccomp/profile.json) from Docker's
current default profile: github.com/moby/profiles, seccomp/default.json, at
commit cd3bed8061c7b7378b61fc6827c7885779417a75 (tag seccomp/v0.2.3, the
profile moby/moby master vendors).

    curl -o /tmp/default.json https://raw.githubusercontent.com/moby/profiles/cd3bed8061c7b7378b61fc6827c7885779417a75/seccomp/default.json
    python3 seccomp/generate.py /tmp/default.json seccomp/profile.json


Target: containers started with --cap-drop ALL, a non-root --user and
no-new-privileges, on Docker Engine 20.10 (API 1.41) with runc.

Transformations (all deterministic, re-run to regenerate):
  1. drop every rule with includes.caps (no capability is ever in the
     bounding set, so the engine would drop them anyway);
  2. rules with excludes.caps always apply to us -> strip the excludes.caps
     condition (keep any excludes.arches / includes.arches condition);
  3. remove ptrace and name_to_handle_at from every ALLOW rule;
  4. the only minKernel rule (ptrace/process_vm_readv/process_vm_writev,
     minKernel 4.8) loses ptrace; its minKernel condition is dropped because
     the host kernel (6.18) satisfies it (20.10 does understand minKernel, see
     NOTES.md; dropping it just makes the file independent of that feature);
  5. remove process_vm_readv/process_vm_writev (reading and writing
     another process's memory: sandboxes never need it);
  6. socketcall(2) answers ENOSYS, so that 32-bit code cannot reach the
     socket families the socket() rules refuse (AF_ALG, AF_VSOCK) through
     it (moby/profiles 7158007, later reverted upstream);
  7. prlimit64 is allowed only on the caller itself (pid 0, which glibc's
     setrlimit and getrlimit pass) or to read limits (no new limit): a
     program may not change another process's limits, its supervisor's
     above all (security review 3, M1);
  8. assert that none of the must-deny syscalls is allowed by any rule.
"""
import json, sys, copy

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
SRC = ARGS[0] if len(ARGS) > 0 else "upstream-default.json"
DST = ARGS[1] if len(ARGS) > 1 else "profile.json"

REMOVE = {"ptrace", "name_to_handle_at", "process_vm_readv", "process_vm_writev", "socketcall",
          "prlimit64"}
MUST_DENY = {
    "ptrace", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "keyctl", "add_key", "request_key", "bpf", "userfaultfd",
    "perf_event_open", "unshare", "setns", "mount", "umount", "umount2",
    "open_by_handle_at", "name_to_handle_at", "fsopen", "fsmount", "fsconfig",
    "fspick", "move_mount", "open_tree", "mount_setattr", "kcmp",
    "pidfd_getfd", "process_madvise", "chroot", "init_module",
    "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "reboot", "syslog", "acct", "swapon", "swapoff", "quotactl",
    "lookup_dcookie", "fanotify_init", "iopl", "ioperm", "vhangup",
    "settimeofday", "clock_settime", "sethostname", "setdomainname",
    "mbind", "set_mempolicy", "get_mempolicy", "process_vm_readv",
    "process_vm_writev", "socketcall",
}
# clone is allowed only with the namespace-flag mask; clone3 gets ENOSYS.
CONDITIONAL_OK = {"clone", "clone3", "socket", "personality"}

up = json.load(open(SRC))
out = {
    "defaultAction": up["defaultAction"],
    "defaultErrnoRet": up.get("defaultErrnoRet"),
    "archMap": up["archMap"],
    "syscalls": [],
}
log = []
for rule in up["syscalls"]:
    r = copy.deepcopy(rule)
    inc = r.get("includes") or {}
    exc = r.get("excludes") or {}
    if inc.get("caps"):
        log.append(f"DROP (includes.caps={inc['caps']}): {r['names']}")
        continue
    if exc.get("caps"):
        log.append(f"KEEP, strip excludes.caps={exc['caps']}: {r['names']} {r['action']}")
        del exc["caps"]
    if inc.get("minKernel"):
        log.append(f"strip includes.minKernel={inc['minKernel']}: {r['names']}")
        del inc["minKernel"]
    if exc.get("minKernel"):
        raise SystemExit("unexpected excludes.minKernel in upstream; review by hand")
    if r["action"] == "SCMP_ACT_ALLOW":
        removed = [n for n in r["names"] if n in REMOVE]
        if removed:
            log.append(f"remove {removed} from ALLOW rule")
            r["names"] = [n for n in r["names"] if n not in REMOVE]
        if not r["names"]:
            continue
    for k in ("includes", "excludes"):
        if k in r and not r[k]:
            del r[k]
    out["syscalls"].append(r)

for index, why in ((0, "on the caller itself (pid 0)"), (2, "to read limits only (no new limit)")):
    out["syscalls"].append({
        "names": ["prlimit64"],
        "action": "SCMP_ACT_ALLOW",
        "args": [{"index": index, "value": 0, "op": "SCMP_CMP_EQ"}],
        "comment": f"prlimit64 {why}: never another process's limits, the supervisor's above all",
    })

out["syscalls"].append({
    "names": ["socketcall"],
    "action": "SCMP_ACT_ERRNO",
    "errnoRet": 38,
    "comment": "32-bit code may not reach socket families refused above through socketcall(2)",
})

allowed = set()
for r in out["syscalls"]:
    if r["action"] == "SCMP_ACT_ALLOW":
        allowed |= set(r["names"])
bad = (allowed & MUST_DENY)
assert not bad, bad
assert not any("prlimit64" in r["names"] and not r.get("args")
               for r in out["syscalls"] if r["action"] == "SCMP_ACT_ALLOW")
assert not any(n.startswith("io_uring") for n in allowed)
with open(DST, "w") as f:
    json.dump(out, f, indent=2)
    f.write("\n")
print("\n".join(log))
print(f"wrote {DST}: {len(out['syscalls'])} rules, {len(allowed)} names in ALLOW rules")
