#!/usr/bin/env python3
"""Runs clang-tidy over source files, skipping those whose every input is unchanged since a run
found nothing in them (hack/tidy calls it).

A clang-tidy result depends only on the tool, its configuration, the compile command and the
text of the translation unit: the source and every header it includes. The key of a file is a
hash of all of them: the tool's version, .clang-tidy, the compile command (the checkout's path
replaced, so another clone of the same tree shares entries), the source, each header the build
saw it include (ninja's dependency log: the build must have run) and the versions of the
installed Debian packages (a header clang finds where g++ did not, after an upgrade). A file
whose run finds nothing is recorded under its key in ~/.cache/serin/tidy (SERIN_TIDY_CACHE); a
later run with the same key skips it. A file with a finding, or with no dependency record, is
always run. SERIN_TIDY_CACHE=off runs every file.

    tidy_run.py CLANG_TIDY BUILD_DIR ROOT FILE...
Exit 0: no findings. Exit 1: findings, printed on stderr.
"""

import concurrent.futures
import hashlib
import json
import os
import pathlib
import subprocess
import sys


def ninja_deps(build):
    """Object path (as ninja names it, relative to the build dir) -> the files it depends on."""
    out = subprocess.run(["ninja", "-C", build, "-t", "deps"], capture_output=True, text=True,
                         check=True).stdout
    deps, current = {}, None
    for line in out.splitlines():
        if not line.strip():
            current = None
        elif not line.startswith(" "):
            target, _, status = line.partition(":")
            current = target if "(VALID)" in status else None
            if current is not None:
                deps[current] = []
        elif current is not None:
            deps[current].append(line.strip())
    return deps


def file_digest(path, memo):
    if path not in memo:
        try:
            memo[path] = hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()
        except OSError:
            memo[path] = "missing"
    return memo[path]


def main():
    tidy, build, root, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    root = os.path.realpath(root)
    build_abs = os.path.realpath(build)
    cache_dir = os.environ.get("SERIN_TIDY_CACHE",
                               os.path.expanduser("~/.cache/serin/tidy"))
    use_cache = cache_dir != "off"

    commands = {}
    for entry in json.loads(pathlib.Path(build, "compile_commands.json").read_text()):
        source = os.path.realpath(os.path.join(entry["directory"], entry["file"]))
        commands[source] = entry

    common = hashlib.sha256()
    common.update(subprocess.run([tidy, "--version"], capture_output=True).stdout)
    common.update(pathlib.Path(root, ".clang-tidy").read_bytes())
    common.update(subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}\\n"],
                                 capture_output=True).stdout)
    deps = ninja_deps(build) if use_cache else {}
    memo = {}

    def key_of(source):
        entry = commands.get(source)
        if entry is None:
            return None
        command = entry.get("command") or " ".join(entry.get("arguments", []))
        # The object file, as ninja's log names it ("output" only in newer CMakes).
        words = command.split()
        output = entry.get("output") or next(
            (words[i + 1] for i in range(len(words) - 1) if words[i] == "-o"), None)
        inputs = deps.get(output)
        if inputs is None:
            return None
        h = common.copy()
        h.update(command.replace(build_abs, "<build>").replace(root, "<root>").encode())
        h.update(file_digest(source, memo).encode())
        for dep in sorted(inputs):
            path = dep if os.path.isabs(dep) else os.path.join(build_abs, dep)
            name = os.path.realpath(path).replace(root, "<root>")
            h.update(name.encode() + b"\0" + file_digest(path, memo).encode())
        return h.hexdigest()

    todo, skipped = [], 0
    for name in files:
        source = os.path.realpath(name)
        key = key_of(source) if use_cache else None
        if key is not None and os.path.exists(os.path.join(cache_dir, key)):
            skipped += 1
        else:
            todo.append((name, key))
    print(f"clang-tidy: {len(files)} files, {skipped} unchanged since a clean run, "
          f"{len(todo)} to check", file=sys.stderr)

    def check(item):
        name, key = item
        run = subprocess.run([tidy, "-p", build, "--quiet", name], capture_output=True, text=True)
        text = run.stdout
        clean = run.returncode == 0 and "warning:" not in text and "error:" not in text
        if clean and key is not None:
            os.makedirs(cache_dir, exist_ok=True)
            pathlib.Path(cache_dir, key).write_text(name + "\n")
        return name, clean, text + (run.stderr if not clean else "")

    findings = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for name, clean, text in pool.map(check, todo):
            if not clean:
                findings.append((name, text))
    for name, text in findings:
        print(f"--- {name}\n{text}", file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
