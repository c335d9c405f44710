# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""`videochat convert-tokenizer SRC_DIR OUTPUT_DIR --preset P`: convert an LLM's sentencepiece tokenizer (a folder with
`tokenizer.model`, and `tokenizer_config.json` when it has one) to a fast tokenizer that gives the original ids (see
`videochat.convert.tokenizer`)."""

import argparse

from ..convert.presets import preset_names
from ..convert.tokenizer import CONFIG_FILE, SENTENCEPIECE_FILE, convert_tokenizer


def add_cli_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the `convert-tokenizer` arguments (SRC_DIR, OUTPUT_DIR, --preset, --overwrite) to `parser`."""
    parser.add_argument(
        "src_dir", metavar="SRC_DIR", help=f"folder with the LLM's {SENTENCEPIECE_FILE} (+ {CONFIG_FILE})"
    )
    parser.add_argument("output_dir", metavar="OUTPUT_DIR", help="folder to write the converted tokenizer to")
    parser.add_argument("--preset", required=True, choices=preset_names(), help="which model the tokenizer belongs to")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace OUTPUT_DIR if a previous videochat run wrote it"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = add_cli_arguments(
        argparse.ArgumentParser(prog="videochat convert-tokenizer", description=__doc__.split("\n\n")[0])
    )
    args = parser.parse_args(argv)
    path = convert_tokenizer(args.src_dir, args.output_dir, args.preset, overwrite=args.overwrite)
    print(f"wrote {path}")
    return 0
