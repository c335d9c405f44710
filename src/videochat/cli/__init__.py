# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""`videochat` command line: `demo`, `chat`, `convert`, `convert-tokenizer`, `parity`, `convert-internvideo2`,
`embed`.

A failing command prints one line `videochat COMMAND: error: ...` and exits with status 2 (see `cli/errors.py`); no
command prints a Python traceback unless `VIDEOCHAT_TRACEBACK=1` is set."""

import sys

from .. import parity
from . import chat, convert, convert_tokenizer, demo, embed
from .errors import handles_errors


COMMANDS = {
    "demo": (demo.main, "build a tiny random model in the original layout, convert it, chat about a generated video"),
    "chat": (chat.main, "chat about a video with a converted checkpoint (streamed answer)"),
    "convert": (convert.main, "convert an original checkpoint to a Hub-ready folder"),
    "convert-tokenizer": (convert_tokenizer.main, "convert a sentencepiece tokenizer with the original ids"),
    "parity": (parity.main, "check a fixture folder against the outputs recorded from the original code"),
    "convert-internvideo2": (convert.internvideo2_main, "alias of `convert` for InternVideo2 foundation checkpoints"),
    "embed": (embed.main, "write video embeddings of an InternVideo2 model for files / folders of videos"),
}


def usage() -> str:
    lines = ["usage: videochat COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<18} {help_text}" for name, (_, help_text) in COMMANDS.items()]
    lines += ["", "Run `videochat COMMAND --help` for the options of a command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"videochat: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    return handles_errors(command)(COMMANDS[command][0])(rest)


if __name__ == "__main__":
    sys.exit(main())
