# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""`videochat convert SOURCE OUTPUT`: convert an original checkpoint into a verified, Hub-ready folder.

    videochat convert SOURCE OUTPUT [--preset P] [--llm DIR] [--vit FILE] [--qformer FILE] [--tokenizer DIR]
                      [--qformer-tokenizer DIR] [--dtype D] [--verify] [--push-to-hub REPO_ID]
    videochat convert SOURCE OUTPUT [--preset P] [--labels FILE] [--vocab FILE] [--gelu G] [--dtype D]

SOURCE is an InternVideo2-Chat hub snapshot (sharded `model-*.safetensors` + index + remote-code `config.json` with
`model_config`), a single `.pth` / `.bin` / `.safetensors` file next to its original config, an original folder
(`original_checkpoint.*` + `original_config.json`, as `videochat demo` writes), or a VideoChat2 / VideoChat stage
file (with `--llm`, and `--vit`/`--qformer` for v1). With `--verify`, a source that is a parity fixture folder is
also checked against the outputs recorded from the original code.

SOURCE may also be an InternVideo2 foundation checkpoint (stage-1 classifier or distillation checkpoint, stage-2
video-text model; told from its key names, or by an InternVideo2 `--preset`): it is converted to the
`InternVideo2*` classes, with `--labels`, `--vocab`, `--gelu` and `--config-overrides`. `videochat
convert-internvideo2 SOURCE OUTPUT` is an alias kept for scripts written before `convert` took these checkpoints.
"""

import argparse
import json
import sys
from pathlib import Path

from ..convert.converter import DTYPES, convert, print_parity
from ..convert.internvideo2 import GELU, convert_internvideo2
from ..convert.presets import all_preset_names, internvideo2_preset_names
from ..convert.sources import ConversionError, detect_source_family
from ..parity import verify_converted_folder
from .errors import handles_errors, report_error


# options that mean something for one kind of source only (argparse destinations)
INTERNVIDEO2_OPTIONS = ("labels", "vocab", "gelu", "config_overrides")
CHAT_OPTIONS = ("llm", "vit", "qformer", "tokenizer", "qformer_tokenizer", "verify", "push_to_hub", "dry_run")


def add_cli_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "source", help="original checkpoint: hub snapshot folder, .pth/.bin/.safetensors file, original folder"
    )
    parser.add_argument("output", help="folder to create (written to a temporary folder and renamed at the end)")
    parser.add_argument(
        "--preset", choices=all_preset_names(), help="model preset (default: detected from the source)"
    )
    parser.add_argument(
        "--llm", help="base LLM folder (VideoChat2 / VideoChat; for InternVideo2-Chat: LLM config override)"
    )
    parser.add_argument("--vit", help="VideoChat v1: EVA ViT-g checkpoint (eva_vit_g.pth)")
    parser.add_argument("--qformer", help="VideoChat v1: BLIP-2 Q-Former checkpoint")
    parser.add_argument("--tokenizer", help="LLM tokenizer folder (default: found in the source or --llm folder)")
    parser.add_argument("--qformer-tokenizer", help="Q-Former BERT tokenizer folder (vocab.txt); [DEC] is added")
    parser.add_argument(
        "--dtype", choices=sorted(DTYPES), help="cast floating tensors (default: keep the source dtypes)"
    )
    parser.add_argument("--verify", action="store_true", help="compare converted and reference computations")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the result to this Hub repo")
    parser.add_argument("--dry-run", action="store_true", help="with --push-to-hub: only list the files to upload")
    parser.add_argument("--max-shard-size", default="5GB", help="shard size (default 5GB)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace OUTPUT if an earlier videochat run wrote it (nothing else)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_internvideo2_arguments(parser.add_argument_group("InternVideo2 foundation checkpoints"))
    return parser


def add_internvideo2_arguments(parser) -> None:
    """The options only InternVideo2 foundation checkpoints take."""
    parser.add_argument("--labels", help="classifier label names: one per line, or a JSON list / object")
    parser.add_argument("--vocab", help="stage 2: bert-large-uncased vocab.txt (writes the text tokenizer)")
    parser.add_argument("--gelu", choices=sorted(GELU), help="block MLP GELU (default: the preset's)")
    parser.add_argument(
        "--config-overrides",
        type=parse_config_overrides,
        metavar="JSON",
        help='config fields the shapes cannot tell, as JSON or a .json file: {"vision": {...}, "text": {...}}',
    )


def parse_config_overrides(value: str) -> dict:
    text = Path(value).read_text(encoding="utf-8") if value.endswith(".json") else value
    try:
        overrides = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON: {error}") from None
    if not isinstance(overrides, dict) or not set(overrides) <= {"vision", "text", "model"}:
        raise argparse.ArgumentTypeError('expected {"vision": {...}, "text": {...}, "model": {...}}')
    return overrides


def refuse_options(args: argparse.Namespace, names: tuple[str, ...], source_kind: str) -> None:
    given = [f"--{name.replace('_', '-')}" for name in names if getattr(args, name, None) not in (None, False)]
    if given:
        raise ConversionError(f"{', '.join(given)} cannot be used with {source_kind} ({args.source})")


def is_fixture_folder(path: Path) -> bool:
    return path.is_dir() and (path / "expected.safetensors").is_file() and (path / "inputs.safetensors").is_file()


@handles_errors("convert")
def main(argv: list[str] | None = None) -> int:
    parser = add_cli_arguments(argparse.ArgumentParser(prog="videochat convert", description=__doc__.split("\n\n")[0]))
    args = parser.parse_args(argv)
    if detect_source_family(args.source, args.preset) == "internvideo2":
        refuse_options(args, CHAT_OPTIONS, "an InternVideo2 foundation checkpoint")
        return run_internvideo2_conversion(args)
    refuse_options(
        args, INTERNVIDEO2_OPTIONS, "a chat model's checkpoint (they are for InternVideo2 foundation models)"
    )
    return run_chat_conversion(args)


def run_chat_conversion(args: argparse.Namespace) -> int:
    try:
        result = convert(
            args.source,
            args.output,
            preset=args.preset,
            llm=args.llm,
            vit=args.vit,
            qformer=args.qformer,
            tokenizer=args.tokenizer,
            qformer_tokenizer=args.qformer_tokenizer,
            dtype=args.dtype,
            verify=args.verify,
            push_to_hub=args.push_to_hub,
            max_shard_size=args.max_shard_size,
            overwrite=args.overwrite,
            progress=not args.no_progress,
            push_dry_run=args.dry_run,
        )
        fixture_report = None
        if args.verify and is_fixture_folder(Path(args.source)):
            fixture_report = verify_converted_folder(result.output, args.source)
            print_parity(fixture_report)
    except (OSError, ValueError) as error:
        return report_error("convert", error)
    print(
        f"wrote {result.output} ({result.preset}): {result.num_tensors} tensors, {result.total_bytes / 1e9:.2f} GB in "
        f"{len(result.shards)} shard(s); {len(result.dropped)} source key(s) dropped by name"
    )
    if result.uploaded is not None:
        verb = "would upload" if args.dry_run else "uploaded"
        print(f"{verb} {len(result.uploaded)} file(s) to {args.push_to_hub}: " + ", ".join(result.uploaded))
    return 0 if fixture_report is None or fixture_report["ok"] else 1


def run_internvideo2_conversion(args: argparse.Namespace) -> int:
    """`convert_internvideo2` with the parsed options; failures propagate to the `videochat` dispatcher (one line,
    exit status 2)."""
    result = convert_internvideo2(
        args.source,
        args.output,
        preset=args.preset,
        dtype=args.dtype,
        labels=args.labels,
        vocab=args.vocab,
        gelu=args.gelu,
        config_overrides=args.config_overrides,
        max_shard_size=args.max_shard_size,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    for message in result.messages:
        print(f"note: {message}", file=sys.stderr)
    print(
        f"wrote {result.output} ({result.preset}, {result.kind}): {result.num_tensors} tensors, "
        f"{result.total_bytes / 1e9:.3f} GB; {len(result.dropped)} source key(s) dropped by name"
    )
    return 0


def internvideo2_main(argv: list[str] | None = None) -> int:
    """`videochat convert-internvideo2 SOURCE OUTPUT`: the alias of `videochat convert` for InternVideo2 foundation
    checkpoints (the source is taken to be one; kept so earlier scripts and docs keep working)."""
    parser = argparse.ArgumentParser(
        prog="videochat convert-internvideo2",
        description="Convert an InternVideo2 foundation-model checkpoint (alias of `videochat convert`).",
    )
    parser.add_argument("source", help="original checkpoint (.pth/.pt/.bin/.safetensors) or a folder holding one")
    parser.add_argument("output", help="folder to create (written under a temporary name, renamed at the end)")
    parser.add_argument(
        "--preset", choices=internvideo2_preset_names(), help="released model (default: generic record of the kind)"
    )
    parser.add_argument("--dtype", choices=sorted(DTYPES), help="cast floating tensors (default: keep source dtypes)")
    add_internvideo2_arguments(parser)
    parser.add_argument("--max-shard-size", default="5GB", help="shard size (default 5GB)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace OUTPUT if an earlier videochat run wrote it (nothing else)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return run_internvideo2_conversion(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
