#!/usr/bin/env python3
"""Checks README.md's samples against what the binary prints, so that they cannot drift.

A sample is the fenced block that follows a line `<!-- sample: ID -->` in README.md. Comparisons ignore
trailing spaces and the figures of wall times and rates ("0.45 ms", "2.31 s", "598 docs/s"), which
differ from run to run; everything else must be equal.

  readme_samples.py check ID [--warn] [--replace OLD=NEW ...]
                                             stdin is a command's output: echoed, then compared with
                                             sample ID (exit 1 on a difference; --warn: exit 0), OLD
                                             replaced by NEW first (e.g. a temporary path by the README's)
  readme_samples.py shell ID QUARRY DIR       sample ID is a terminal session whose first line is
                                             `$ quarry shell NAME ARGS...`: runs QUARRY shell DIR ARGS on
                                             a pseudo-terminal, types each `quarry> ` line and compares
                                             the screen with the sample
  readme_samples.py flags ID QUARRY           every `quarry CMD ... --flag` of sample ID is a command
                                             whose --help lists that flag (the documented spelling)

Python's standard library only (it runs before the project's virtualenv exists).
"""
import argparse
import difflib
import os
import re
import select
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIME = re.compile(r"\b\d+(?:\.\d+)? (ms|s|[a-z]+/s)\b")  # wall times and rates ("598 docs/s")


def sample(readme, sample_id):
    lines = open(readme, encoding="utf-8").read().split("\n")
    marker = f"<!-- sample: {sample_id} -->"
    for i, line in enumerate(lines):
        if line.strip() != marker:
            continue
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        end = j + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        if end >= len(lines):
            sys.exit(f"readme_samples: {readme}: sample {sample_id} has no closed code block")
        return "\n".join(lines[j + 1:end]) + "\n"
    sys.exit(f"readme_samples: {readme}: no sample '{sample_id}' (a line '{marker}' before a code block)")


def normalise(text):
    return "\n".join(TIME.sub(r"# \1", line.rstrip()) for line in text.replace("\r\n", "\n").split("\n")).strip("\n")


def compare(sample_id, expected, got, warn):
    a, b = normalise(expected).split("\n"), normalise(got).split("\n")
    if a == b:
        print(f"readme_samples: README sample '{sample_id}' is what the binary prints", file=sys.stderr)
        return 0
    diff = "\n".join(difflib.unified_diff(a, b, "README.md", "printed now", lineterm=""))
    print(f"readme_samples: README sample '{sample_id}' differs from what the binary prints "
          f"(wall times masked as #):\n{diff}", file=sys.stderr)
    return 0 if warn else 1


def run_shell(quarry, directory, args, inputs, timeout=60):
    """Types `inputs` into `quarry shell DIR ARGS` on a pseudo-terminal; returns what the screen showed."""
    import pty
    env = dict(os.environ, TERM="xterm", NO_COLOR="1", COLUMNS="200", LINES="50")
    env["XDG_STATE_HOME"] = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"readme-samples-{os.getpid()}")
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.clear()
        os.environ.update(env)
        os.execv(quarry, [quarry, "shell", directory] + args)
    screen = b""

    def read_until(suffix):
        nonlocal screen
        deadline = time.time() + timeout
        while time.time() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            try:
                data = os.read(fd, 65536)
            except OSError:
                return
            if not data:
                return
            screen += data
            if suffix and screen.endswith(suffix):
                return
        sys.exit(f"readme_samples: the shell did not answer within {timeout} s; screen so far:\n{screen.decode(errors='replace')}")

    def wait_for_raw_mode():
        # libedit prints the prompt, then leaves canonical mode; keys typed before that are echoed twice
        # (by the line discipline, then by libedit), so type only once the terminal is raw.
        import termios
        deadline = time.time() + timeout
        while termios.tcgetattr(fd)[3] & termios.ICANON and time.time() < deadline:
            time.sleep(0.005)

    read_until(b"quarry> ")
    for i, line in enumerate(inputs):
        wait_for_raw_mode()
        os.write(fd, line.encode() + b"\r")
        read_until(b"quarry> " if i + 1 < len(inputs) else None)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"readme_samples: the shell exited with {os.waitstatus_to_exitcode(status)}")
    return screen.decode()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readme", default=os.path.join(ROOT, "README.md"))
    sub = parser.add_subparsers(dest="what", required=True)
    check = sub.add_parser("check")
    check.add_argument("id")
    check.add_argument("--warn", action="store_true", help="report a difference but exit 0")
    check.add_argument("--replace", action="append", default=[], metavar="OLD=NEW")
    shell = sub.add_parser("shell")
    shell.add_argument("id")
    shell.add_argument("quarry")
    shell.add_argument("dir")
    flags = sub.add_parser("flags")
    flags.add_argument("id")
    flags.add_argument("quarry")
    a = parser.parse_args()
    expected = sample(a.readme, a.id)

    if a.what == "check":
        got = sys.stdin.read()
        sys.stdout.write(got)
        sys.stdout.flush()
        for pair in a.replace:
            old, _, new = pair.partition("=")
            got = got.replace(old, new)
        return compare(a.id, expected, got, a.warn)

    if a.what == "shell":
        first, *rest = expected.split("\n")
        words = first.split()
        if words[:3] != ["$", "quarry", "shell"] or len(words) < 4:
            sys.exit(f"readme_samples: sample {a.id} must start with '$ quarry shell NAME ...', not '{first}'")
        inputs = [line[len("quarry> "):] for line in rest if line.startswith("quarry> ")]
        screen = run_shell(a.quarry, a.dir, words[4:], inputs)
        return compare(a.id, "\n".join(rest), screen, warn=False)

    # flags: `quarry [group] command` (or `quarry search|eval`: each of them) followed by flags, on lines
    # of the sample; indented lines continue the command above.
    groups = {"hr", "resmem"}
    failures, commands = [], []
    for line in expected.split("\n"):
        code = line.split("#")[0]
        words = code.split()
        if words and words[0] == "quarry" and len(words) > 1:
            if words[1] in groups and len(words) > 2:
                commands = [[words[1], words[2]]]
            else:
                commands = [[name] for name in words[1].split("|")]
        elif not line.startswith(" "):
            commands = []
        for command in commands:
            helptext = subprocess.run([a.quarry, *command, "--help"], capture_output=True, text=True)
            if helptext.returncode != 0:
                failures.append(f"`quarry {' '.join(command)}` is no command ({helptext.stderr.strip()})")
                continue
            for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])\b", code):
                if not re.search(r"(^|[\s,])" + re.escape(flag) + r"\b", helptext.stdout, re.M):
                    failures.append(f"`quarry {' '.join(command)}` does not list {flag} in --help")
    for f in failures:
        print(f"readme_samples: sample {a.id}: {f}", file=sys.stderr)
    if not failures:
        print(f"readme_samples: every command and flag of README sample '{a.id}' is in --help", file=sys.stderr)
    return 1 if failures else 0

if __name__ == "__main__":
    sys.exit(main())
