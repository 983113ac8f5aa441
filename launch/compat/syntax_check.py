"""Compiles (syntax only) every translation unit of a configured build against another LibTorch's
headers, so that code written against Debian's 1.13 keeps building against the PyTorch 2.x a GPU
machine has. Used by launch/torch-compat.

  python3 launch/compat/syntax_check.py BUILD_DIR HEADER_PREFIX CXX_STD LOG [JOBS]

HEADER_PREFIX holds usr/include/{ATen,c10,torch} of the other LibTorch (a libtorch-dev .deb
unpacked); CXX_STD is the -std= value (gnu++17, gnu++20). Prints one line per file and a count,
writes the compiler's errors to LOG; exits 1 if any file failed.
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


def main():
    build, prefix, std, log = sys.argv[1:5]
    jobs = int(sys.argv[5]) if len(sys.argv) > 5 else os.cpu_count()
    entries = [e for e in json.load(open(os.path.join(build, "compile_commands.json")))
               if "cmake_pch" not in e["file"]]

    def run(e):
        p = subprocess.run(command(e, prefix, std), cwd=e["directory"], capture_output=True, text=True)
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
