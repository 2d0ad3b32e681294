"""Generate an application code tree for `metrics-sync refs`: N source files in several languages.

    python benchmarks/code_tree.py OUT_DIR --files 100000 [--events 1000] [--git]

About 3 KB per file of plausible code (imports, functions, comments, strings); one file in 50 sends one of
the events `event-0` … `event-{E-1}` with its language's SDK call (some through a constant), and a
`node_modules/` folder of 5% more files is there to be skipped. With --git the tree is a repository with
every file committed (`.gitignore` ignores a `generated/` folder that is also written). Deterministic.
"""

from __future__ import annotations

import argparse
import random
import subprocess
from pathlib import Path

FILES_PER_FOLDER = 100
BODY = {
    ".ts": ("import {{ helper{i} }} from './helpers';\n// Computes the value of widget {i}.\n"
            "export function widget{i}(input: number): string {{\n  const label = 'widget-{i}';\n"
            "  return `${{label}}: ${{helper{i}(input)}}`;\n}}\n"),
    ".py": ('"""Module {i}."""\n\nimport os\n\n\ndef handler_{i}(request):\n    # read the setting\n'
            '    value = os.environ.get("SETTING_{i}", "default")\n    return {{"id": {i}, "value": value}}\n\n'),
    ".go": ("package pkg{i}\n\nimport \"fmt\"\n\n// Handler{i} formats a value.\nfunc Handler{i}(v int) string {{\n"
            "\treturn fmt.Sprintf(\"value-%d-{i}\", v)\n}}\n\n"),
    ".java": ("package com.example.p{i};\n\n/** Service {i}. */\npublic class Service{i} {{\n"
              "    private static final String NAME = \"service-{i}\";\n    public String name() {{ return NAME; }}\n"
              "}}\n\n"),
    ".rb": ("# Service {i}\nclass Service{i}\n  def call(value)\n    \"service-{i}: #{{value}}\"\n  end\nend\n\n"),
}
CALL = {
    ".ts": "  ldClient.track('{event}', {{ source: 'widget' }});\n",
    ".py": "    ldclient.get().track(\"{event}\", context)\n",
    ".go": "\tclient.TrackEvent(\"{event}\", ctx)\n",
    ".java": "        client.track(\"{event}\", context);\n",
    ".rb": "    client.track(\"{event}\", context)\n",
}
WEIGHTS = {".ts": 40, ".py": 20, ".go": 15, ".java": 15, ".rb": 10}
TARGET_BYTES = 3000


def source(ext: str, i: int, event: str | None) -> str:
    body = BODY[ext].format(i=i)
    text = body * max(1, TARGET_BYTES // len(body))
    if event is not None:
        text += CALL[ext].format(event=event)
    return text


def write(out: Path, files: int, events: int, git: bool) -> None:
    rng = random.Random(17)
    extensions = list(WEIGHTS)
    weights = list(WEIGHTS.values())
    for i in range(files):
        ext = rng.choices(extensions, weights)[0]
        folder = out / "src" / f"area{i // (FILES_PER_FOLDER * 10)}" / f"module{i // FILES_PER_FOLDER}"
        folder.mkdir(parents=True, exist_ok=True)
        event = f"event-{rng.randrange(events)}" if i % 50 == 0 else None
        (folder / f"file{i}{ext}").write_text(source(ext, i, event), encoding="utf-8")
    for i in range(files // 20):
        folder = out / "node_modules" / f"pkg{i // FILES_PER_FOLDER}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"index{i}.js").write_text(source(".ts", i, "vendored-event"), encoding="utf-8")
    (out / "generated").mkdir(exist_ok=True)
    (out / "generated" / "ignored.ts").write_text(source(".ts", 0, "ignored-event"), encoding="utf-8")
    (out / ".gitignore").write_text("generated/\n", encoding="utf-8")
    if git:
        quiet = {"check": True, "cwd": out, "stdout": subprocess.DEVNULL}
        subprocess.run(["git", "init", "-q"], **quiet)  # type: ignore[call-overload]
        subprocess.run(["git", "add", "-A"], **quiet)  # type: ignore[call-overload]
        subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-q", "-m",
                        "code"], **quiet)  # type: ignore[call-overload]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--git", action="store_true")
    args = parser.parse_args()
    write(args.out, args.files, args.events, args.git)


if __name__ == "__main__":
    main()
