"""Compiles (syntax only) every translation unit of a configured build against another LibTorch's
headers, so that code written against Debian's 1.13 keeps building against the PyTorch 2.x a GPU
machine has. Used by launch/torch-compat.

  python3 launch/compat/syntax_check.py BUILD_DIR HEADER_PREFIX CXX_STD LOG [JOBS]
  python3 launch/compat/syntax_check.py --run BUILD_DIR HEADER_PREFIX COMMAND...

HEADER_PREFIX holds usr/include/{ATen,c10,torch} of the other LibTorch (a libtorch-dev .deb
unpacked); CXX_STD is the -std= value (gnu++17, gnu++20). Prints one line per file and a count,
writes the compiler's errors to LOG; exits 1 if any file failed.

Every other LibTorch's headers (Debian's 1.13 in /usr/include) are hidden from each compile (an
empty tmpfs over their folders, in a mount namespace of its own): otherwise a header the checked
release no longer ships would silently come from 1.13 (torch/linalg.h did). --run runs COMMAND
(a real build of BUILD_DIR, say) with the same folders hidden.
"""
import json, os, shlex, subprocess, sys
from concurrent.futures import ThreadPoolExecutor


def command(entry, prefix, std):
    a = shlex.split(entry["command"])
    out = [a[0], f"-I{prefix}/usr/include", f"-I{prefix}/usr/include/torch/csrc/api/include"]
    i = 1
    while i < len(a):
        x = a[i]
        if x in ("-o", "-include", "-c"):  # output, precompiled header, input: dropped
            i += 2
            continue
        if x.startswith("-std="):
            x = "-std=" + std
        if x != "-Winvalid-pch" and not x.startswith("-O"):
            out.append(x)
        i += 1
    return out + ["-fsyntax-only", "-w", entry["file"]]


def other_torch_dirs(entries, prefix):
    """LibTorch's include folders (torch, ATen, c10, caffe2) that a compile could reach outside
    PREFIX: under the include folders the commands name and the compiler's own (/usr/include)."""
    prefix = os.path.realpath(prefix)
    roots = {"/usr/include", "/usr/local/include"}
    for e in entries:
        a = shlex.split(e["command"])
        for i, x in enumerate(a):
            if x.startswith("-I") and len(x) > 2:
                roots.add(x[2:])
            elif x in ("-I", "-isystem") and i + 1 < len(a):
                roots.add(a[i + 1])
    dirs = set()
    for r in map(os.path.realpath, roots):
        if r == prefix or r.startswith(prefix + os.sep):
            continue
        dirs.update(d for d in (os.path.join(r, n) for n in ("torch", "ATen", "c10", "caffe2"))
                    if os.path.isdir(d) and not os.path.realpath(d).startswith(prefix + os.sep))
    return [d for d in sorted(dirs) if not any(d.startswith(o + os.sep) for o in dirs)]  # outermost


def hidden(cmd, dirs):
    if not dirs:
        return cmd
    mounts = 'while [ "$1" != -- ]; do mount -t tmpfs none "$1" || exit 3; shift; done; shift; exec "$@"'
    return (["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-r", "-m"]) + \
        ["sh", "-c", mounts, "sh"] + dirs + ["--"] + cmd


def compile_entries(build):
    return [e for e in json.load(open(os.path.join(build, "compile_commands.json")))
            if "cmake_pch" not in e["file"]]


def hidden_dirs(entries, prefix):
    hide = other_torch_dirs(entries, prefix)
    if hide:
        print("hidden from every compile: " + " ".join(hide), flush=True)
    return hide


def main():
    if sys.argv[1] == "--run":
        build, prefix, cmd = sys.argv[2], sys.argv[3], sys.argv[4:]
        sys.exit(subprocess.run(hidden(cmd, hidden_dirs(compile_entries(build), prefix))).returncode)
    build, prefix, std, log = sys.argv[1:5]
    jobs = int(sys.argv[5]) if len(sys.argv) > 5 else os.cpu_count()
    entries = compile_entries(build)
    hide = hidden_dirs(entries, prefix)

    def run(e):
        p = subprocess.run(hidden(command(e, prefix, std), hide), cwd=e["directory"], capture_output=True,
                           text=True)
        return e["file"], p.returncode, p.stderr

    failed = 0
    with open(log, "w") as out, ThreadPoolExecutor(jobs) as pool:
        for f, rc, err in pool.map(run, entries):
            if rc:
                failed += 1
                out.write(f"=== {f}\n{err}\n")
                out.flush()
            print(("FAIL " if rc else "ok   ") + os.path.relpath(f), flush=True)
    print(f"{failed} of {len(entries)} files failed against {prefix} ({std})")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
