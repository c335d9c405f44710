# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""`videochat convert SOURCE OUTPUT`: convert an original checkpoint into a verified, Hub-ready folder.

    videochat convert SOURCE OUTPUT [--preset P] [--llm DIR] [--vit FILE] [--qformer FILE] [--tokenizer DIR]
                      [--qformer-tokenizer DIR] [--dtype D] [--verify] [--push-to-hub REPO_ID]

SOURCE is an InternVideo2-Chat hub snapshot (sharded `model-*.safetensors` + index + remote-code `config.json` with
`model_config`), a single `.pth` / `.bin` / `.safetensors` file next to its original config, an original folder
(`original_checkpoint.*` + `original_config.json`, as `videochat demo` writes), or a VideoChat2 / VideoChat stage
file (with `--llm`, and `--vit`/`--qformer` for v1). With `--verify`, a source that is a parity fixture folder is
also checked against the outputs recorded from the original code.
"""

import argparse
import sys
from pathlib import Path

from ..convert.converter import DTYPES, convert, print_parity
from ..convert.presets import preset_names
from ..parity import verify_converted_folder
from .errors import handles_errors, report_error


def add_cli_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "source", help="original checkpoint: hub snapshot folder, .pth/.bin/.safetensors file, original folder"
    )
    parser.add_argument("output", help="folder to create (written to a temporary folder and renamed at the end)")
    parser.add_argument("--preset", choices=preset_names(), help="model preset (default: detected from the source)")
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
    return parser


def is_fixture_folder(path: Path) -> bool:
    return path.is_dir() and (path / "expected.safetensors").is_file() and (path / "inputs.safetensors").is_file()


@handles_errors("convert")
def main(argv: list[str] | None = None) -> int:
    parser = add_cli_arguments(argparse.ArgumentParser(prog="videochat convert", description=__doc__.split("\n\n")[0]))
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
