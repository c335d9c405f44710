# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Read a sentencepiece `.model` file without protobuf: a small reader of the protobuf wire format.

`sentencepiece_model_pb2` ties the conversion to one protobuf generation (sentencepiece 0.2.3's gencode needs
protobuf >= 7.36.1, older sentencepiece wheels fail on new protobuf runtimes, and tools like lmms-eval pin protobuf
below 7), so `read_sentencepiece_model` parses the file itself. It returns objects with the attributes of
`ModelProto` the tokenizer conversion reads (`pieces[i].piece / score / type`, `trainer_spec.*`, `normalizer_spec.*`,
`denormalizer_spec.*`), with the proto2 defaults of `sentencepiece_model.proto` for absent fields.

Wire format: each field is a varint key `(field_number << 3) | wire_type`; wire types 0 = varint, 1 = 8 bytes,
2 = length-delimited (strings, bytes, sub-messages), 5 = 4 bytes (float). Unknown fields are skipped.
"""

import struct
from dataclasses import dataclass, field


VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5


class WireFormatError(ValueError):
    pass


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data):
            raise WireFormatError("truncated varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
        if shift >= 70:
            raise WireFormatError("varint longer than 10 bytes")


def parse_fields(data: bytes) -> dict[int, list]:
    """Field number -> raw values in file order (`int` for varints, `bytes` for the other wire types)."""
    fields: dict[int, list] = {}
    position = 0
    while position < len(data):
        key, position = _read_varint(data, position)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise WireFormatError("field number 0")
        if wire_type == VARINT:
            value, position = _read_varint(data, position)
        elif wire_type == FIXED64:
            value, position = data[position : position + 8], position + 8
        elif wire_type == FIXED32:
            value, position = data[position : position + 4], position + 4
        elif wire_type == LENGTH_DELIMITED:
            length, position = _read_varint(data, position)
            value, position = data[position : position + length], position + length
        else:  # groups (3, 4) are not used by sentencepiece_model.proto
            raise WireFormatError(f"unsupported wire type {wire_type} (field {number})")
        if position > len(data):
            raise WireFormatError(f"field {number} runs past the end of the message")
        fields.setdefault(number, []).append(value)
    return fields


def _int32(value: int) -> int:
    value &= (1 << 64) - 1  # a negative int32 is written as a 10-byte two's complement varint
    return value - (1 << 64) if value >= 1 << 63 else value


def _float(value) -> float:
    if not isinstance(value, bytes) or len(value) != 4:
        raise WireFormatError("float field is not a 4-byte value")
    return struct.unpack("<f", value)[0]


def _string(value) -> str:
    if not isinstance(value, bytes):
        raise WireFormatError("string field is not length-delimited")
    return value.decode("utf-8")


# name: (field number, kind, proto2 default) of the scalar fields of TrainerSpec / NormalizerSpec.
TRAINER_SPEC = {
    "model_prefix": (2, "string", ""),
    "model_type": (3, "int", 1),
    "vocab_size": (4, "int", 8000),
    "character_coverage": (10, "float", 0.9995),
    "max_sentencepiece_length": (20, "int", 16),
    "split_by_unicode_script": (21, "bool", True),
    "split_by_whitespace": (22, "bool", True),
    "split_by_number": (23, "bool", True),
    "treat_whitespace_as_suffix": (24, "bool", False),
    "split_digits": (25, "bool", False),
    "allow_whitespace_only_pieces": (26, "bool", False),
    "vocabulary_output_piece_score": (32, "bool", True),
    "hard_vocab_limit": (33, "bool", True),
    "use_all_vocab": (34, "bool", False),
    "byte_fallback": (35, "bool", False),
    "required_chars": (36, "string", ""),
    "unk_id": (40, "int", 0),
    "bos_id": (41, "int", 1),
    "eos_id": (42, "int", 2),
    "pad_id": (43, "int", -1),
    "unk_surface": (44, "string", " \u2047 "),
    "unk_piece": (45, "string", "<unk>"),
    "bos_piece": (46, "string", "<s>"),
    "eos_piece": (47, "string", "</s>"),
    "pad_piece": (48, "string", "<pad>"),
}
TRAINER_SPEC_REPEATED = {"input": 1, "accept_language": 5, "control_symbols": 30, "user_defined_symbols": 31}
NORMALIZER_SPEC = {
    "name": (1, "string", ""),
    "precompiled_charsmap": (2, "bytes", b""),
    "add_dummy_prefix": (3, "bool", True),
    "remove_extra_whitespaces": (4, "bool", True),
    "escape_whitespaces": (5, "bool", True),
    "normalization_rule_tsv": (6, "string", ""),
}


def _scalar(fields: dict, number: int, kind: str, default):
    values = fields.get(number)
    if not values:
        return struct.unpack("<f", struct.pack("<f", default))[0] if kind == "float" else default
    value = values[-1]  # proto2: the last occurrence of a non-repeated scalar wins
    if kind == "int":
        return _int32(value)
    if kind == "bool":
        return bool(value)
    if kind == "float":
        return _float(value)
    if kind == "string":
        return _string(value)
    return bytes(value)


class Spec:
    """A `TrainerSpec` / `NormalizerSpec`: its scalar fields (and repeated strings) as attributes."""

    def __init__(self, data: bytes, scalars: dict, repeated: dict | None = None):
        fields = parse_fields(data)
        for name, (number, kind, default) in scalars.items():
            setattr(self, name, _scalar(fields, number, kind, default))
        for name, number in (repeated or {}).items():
            setattr(self, name, [_string(value) for value in fields.get(number, [])])


@dataclass
class SentencePiece:
    piece: str = ""
    score: float = 0.0
    type: int = 1  # NORMAL


@dataclass
class ModelProto:
    pieces: list = field(default_factory=list)
    trainer_spec: Spec | None = None
    normalizer_spec: Spec | None = None
    denormalizer_spec: Spec | None = None


def parse_model_proto(data: bytes) -> ModelProto:
    fields = parse_fields(data)
    pieces = []
    for raw in fields.get(1, []):
        if not isinstance(raw, bytes):
            raise WireFormatError("ModelProto.pieces is not a message")
        piece_fields = parse_fields(raw)
        pieces.append(
            SentencePiece(
                piece=_scalar(piece_fields, 1, "string", ""),
                score=_scalar(piece_fields, 2, "float", 0.0),
                type=_scalar(piece_fields, 3, "int", 1),
            )
        )

    def message(number: int) -> bytes:
        values = fields.get(number) or [b""]
        if not all(isinstance(value, bytes) for value in values):
            raise WireFormatError(f"ModelProto field {number} is not a message")
        return b"".join(values)  # proto2 merges repeated occurrences of a sub-message

    return ModelProto(
        pieces=pieces,
        trainer_spec=Spec(message(2), TRAINER_SPEC, TRAINER_SPEC_REPEATED),
        normalizer_spec=Spec(message(3), NORMALIZER_SPEC),
        denormalizer_spec=Spec(message(5), NORMALIZER_SPEC),
    )


__all__ = ["ModelProto", "SentencePiece", "Spec", "WireFormatError", "parse_fields", "parse_model_proto"]
