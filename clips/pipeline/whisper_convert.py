"""Convert a CTranslate2 Whisper model (faster-whisper's format) into an openai-whisper
checkpoint, so that both engines run offline on the same packaged weights.

CTranslate2's `model.bin` is a plain list of named arrays (see `_serialize` in
ctranslate2/specs/model_spec.py): a version, the spec's name and revision, then for
each variable its name, shape, dtype and raw bytes, then aliases. Whisper's variables
map one to one onto openai-whisper's, except that CTranslate2 fuses the self-attention
query/key/value (and the cross-attention key/value) into one linear layer, which we
split back. openai-whisper's key projection has no bias: CTranslate2 stores zeros
there, and a bias on the keys would not change attention anyway (softmax is invariant
to a per-query constant). The encoder's positional embedding is a fixed sinusoid that
openai-whisper computes itself. The alignment heads that word timestamps need are in
`config.json`.

int8-quantised files cannot be converted: their weights have been rounded to 256
levels per row, which is not the model openai-whisper would run.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import struct
import tempfile
from pathlib import Path
from typing import Any

from clips.pipeline.base import StageError

# The DataType enum of include/ctranslate2/types.h, in order.
_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
_SUPPORTED_BINARY_VERSIONS = range(1, 7)
CHECKPOINT_FORMAT = 1


def read_ctranslate2_model(path: Path) -> tuple[str, dict[str, Any], dict[str, str]]:
    """Read a CTranslate2 `model.bin`: (spec name, {name: torch tensor}, aliases)."""
    import numpy as np
    import torch

    def read(fmt: str):
        size = struct.calcsize(fmt)
        chunk = fh.read(size)
        if len(chunk) != size:
            raise StageError(f"{path} is truncated", {"path": str(path)})
        return struct.unpack(fmt, chunk)

    def read_string() -> str:
        (length,) = read("H")
        return fh.read(length)[:-1].decode("utf-8")

    variables: dict[str, Any] = {}
    aliases: dict[str, str] = {}
    with open(path, "rb") as fh:
        (version,) = read("I")
        if version not in _SUPPORTED_BINARY_VERSIONS:
            raise StageError(
                f"{path}: CTranslate2 binary version {version} is not supported",
                {
                    "path": str(path),
                    "version": version,
                    "supported": list(_SUPPORTED_BINARY_VERSIONS),
                },
            )
        spec = read_string() if version >= 2 else ""
        if version >= 2:
            read("I")  # the spec's revision
        (count,) = read("I")
        for _ in range(count):
            name = read_string()
            (ndim,) = read("B")
            shape = read("I" * ndim) if ndim else ()
            (type_id,) = read("B")
            (num_bytes,) = read("I")
            raw = fh.read(num_bytes)
            if len(raw) != num_bytes:
                raise StageError(f"{path} is truncated", {"path": str(path), "variable": name})
            dtype = _DTYPES[type_id]
            if dtype == "bfloat16":
                array = torch.frombuffer(bytearray(raw), dtype=torch.bfloat16)
            else:
                array = torch.from_numpy(np.frombuffer(raw, dtype=dtype).copy())
            variables[name] = array.reshape(shape)
        if version >= 3:
            (alias_count,) = read("I")
            for _ in range(alias_count):
                alias = read_string()
                aliases[alias] = read_string()
    return spec, variables, aliases


def _count_layers(variables: dict[str, Any], prefix: str) -> int:
    pattern = re.compile(rf"^{prefix}/layer_(\d+)/")
    return len({match.group(1) for name in variables if (match := pattern.match(name))})


def _split_rows(tensor, parts: int):
    return list(tensor.chunk(parts, dim=0))


def convert_state_dict(
    variables: dict[str, Any], *, alignment_heads: list[list[int]] | None = None
) -> dict[str, Any]:
    """CTranslate2 Whisper variables → {"dims", "model_state_dict", "alignment_heads"}.

    Tensors keep their float dtype (float16 for the packaged models, as openai's own
    checkpoints); openai-whisper casts them when it loads them.
    """
    import torch

    quantised = sorted(
        name
        for name, value in variables.items()
        if name.endswith("weight_scale") or (value.dtype == torch.int8 and value.ndim >= 2)
    )
    if quantised:
        raise StageError(
            "This CTranslate2 model is int8-quantised; it cannot be converted back into "
            "an openai-whisper checkpoint. Convert from a float16 or float32 CTranslate2 "
            "model (ct2-transformers-converter --quantization float16).",
            {"quantised_variables": quantised[:5]},
        )
    required = (
        "encoder/conv1/weight",
        "decoder/embeddings/weight",
        "decoder/position_encodings/encodings",
    )
    missing = [name for name in required if name not in variables]
    if missing:
        raise StageError("Not a CTranslate2 Whisper model", {"missing": missing})

    n_audio_layer = _count_layers(variables, "encoder")
    n_text_layer = _count_layers(variables, "decoder")
    n_mels = variables["encoder/conv1/weight"].shape[1]
    n_audio_state = variables["encoder/conv1/weight"].shape[0]
    n_vocab, n_text_state = variables["decoder/embeddings/weight"].shape
    dims = {
        "n_mels": int(n_mels),
        # 30 s of audio at 100 frames a second, halved by conv2's stride.
        "n_audio_ctx": int(variables["encoder/position_encodings/encodings"].shape[0])
        if "encoder/position_encodings/encodings" in variables
        else 1500,
        "n_audio_state": int(n_audio_state),
        "n_audio_head": int(variables["encoder/num_heads"].item()),
        "n_audio_layer": n_audio_layer,
        "n_vocab": int(n_vocab),
        "n_text_ctx": int(variables["decoder/position_encodings/encodings"].shape[0]),
        "n_text_state": int(n_text_state),
        "n_text_head": int(variables["decoder/num_heads"].item()),
        "n_text_layer": n_text_layer,
    }

    state: dict[str, Any] = {}

    def linear(target: str, source: str, bias: bool = True) -> None:
        state[f"{target}.weight"] = variables[f"{source}/weight"]
        if bias:
            state[f"{target}.bias"] = variables[f"{source}/bias"]

    def norm(target: str, source: str) -> None:
        state[f"{target}.weight"] = variables[f"{source}/gamma"]
        state[f"{target}.bias"] = variables[f"{source}/beta"]

    def fused(target_names: list[str], source: str) -> None:
        weights = _split_rows(variables[f"{source}/weight"], len(target_names))
        biases = _split_rows(variables[f"{source}/bias"], len(target_names))
        for name, weight, bias in zip(target_names, weights, biases, strict=True):
            state[f"{name}.weight"] = weight.contiguous()
            if not name.endswith(".key"):
                state[f"{name}.bias"] = bias.contiguous()

    def block(target: str, source: str, cross: bool) -> None:
        norm(f"{target}.attn_ln", f"{source}/self_attention/layer_norm")
        fused(
            [f"{target}.attn.query", f"{target}.attn.key", f"{target}.attn.value"],
            f"{source}/self_attention/linear_0",
        )
        linear(f"{target}.attn.out", f"{source}/self_attention/linear_1")
        if cross:
            norm(f"{target}.cross_attn_ln", f"{source}/attention/layer_norm")
            linear(f"{target}.cross_attn.query", f"{source}/attention/linear_0")
            fused(
                [f"{target}.cross_attn.key", f"{target}.cross_attn.value"],
                f"{source}/attention/linear_1",
            )
            linear(f"{target}.cross_attn.out", f"{source}/attention/linear_2")
        norm(f"{target}.mlp_ln", f"{source}/ffn/layer_norm")
        linear(f"{target}.mlp.0", f"{source}/ffn/linear_0")
        linear(f"{target}.mlp.2", f"{source}/ffn/linear_1")

    linear("encoder.conv1", "encoder/conv1")
    linear("encoder.conv2", "encoder/conv2")
    # A fixed sinusoid, not a learned weight: computed as openai-whisper computes it.
    from whisper.model import sinusoids

    state["encoder.positional_embedding"] = sinusoids(
        dims["n_audio_ctx"], dims["n_audio_state"]
    ).to(variables["encoder/conv1/weight"].dtype)
    for i in range(n_audio_layer):
        block(f"encoder.blocks.{i}", f"encoder/layer_{i}", cross=False)
    norm("encoder.ln_post", "encoder/layer_norm")

    state["decoder.token_embedding.weight"] = variables["decoder/embeddings/weight"]
    state["decoder.positional_embedding"] = variables["decoder/position_encodings/encodings"]
    for i in range(n_text_layer):
        block(f"decoder.blocks.{i}", f"decoder/layer_{i}", cross=True)
    norm("decoder.ln", "decoder/layer_norm")

    if alignment_heads is None:
        # CTranslate2's and openai-whisper's default: every head of the last half.
        alignment_heads = [
            [layer, head]
            for layer in range(n_text_layer // 2, n_text_layer)
            for head in range(dims["n_text_head"])
        ]
    return {
        "dims": dims,
        "model_state_dict": state,
        "alignment_heads": encode_alignment_heads(
            alignment_heads, n_text_layer, dims["n_text_head"]
        ),
        "clypai_format": CHECKPOINT_FORMAT,
    }


def encode_alignment_heads(heads: list[list[int]], n_layers: int, n_heads: int) -> bytes:
    """(layer, head) pairs → the base85 gzip mask that Whisper.set_alignment_heads reads."""
    import numpy as np

    mask = np.zeros((n_layers, n_heads), dtype=bool)
    for layer, head in heads:
        mask[layer, head] = True
    return base64.b85encode(gzip.compress(mask.tobytes(), mtime=0))


def decode_alignment_heads(dump: bytes, n_layers: int, n_heads: int) -> list[list[int]]:
    import numpy as np

    mask = np.frombuffer(gzip.decompress(base64.b85decode(dump)), dtype=bool).reshape(
        n_layers, n_heads
    )
    return [[int(layer), int(head)] for layer, head in zip(*np.nonzero(mask), strict=True)]


def convert_model_dir(model_dir: Path) -> dict[str, Any]:
    """Read a CTranslate2 Whisper directory and return the openai-whisper checkpoint."""
    model_dir = Path(model_dir)
    model_bin = model_dir / "model.bin"
    if not model_bin.is_file():
        raise StageError(f"No model.bin in {model_dir}", {"path": str(model_dir)})
    spec, variables, _aliases = read_ctranslate2_model(model_bin)
    if spec and spec != "WhisperSpec":
        raise StageError(f"{model_bin} is a {spec}, not a Whisper model", {"spec": spec})
    config_path = model_dir / "config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    return convert_state_dict(variables, alignment_heads=config.get("alignment_heads"))


def write_checkpoint(checkpoint: dict[str, Any], target: Path) -> Path:
    """Save with torch.save, atomically: a reader never sees half a file."""
    import torch

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(checkpoint, fh)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def load_whisper(checkpoint_path: Path, device: str = "cpu"):
    """An openai-whisper model from a checkpoint made here, alignment heads set."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    model = Whisper(ModelDimensions(**checkpoint["dims"]))
    model.load_state_dict(checkpoint["model_state_dict"], strict=True)
    if checkpoint.get("alignment_heads"):
        model.set_alignment_heads(checkpoint["alignment_heads"])
    return model.to(device)
