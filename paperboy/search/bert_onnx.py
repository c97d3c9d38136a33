"""A BERT sentence-transformers model as an ONNX graph, built from its safetensors weights without torch.

`build_folder` reads a model folder (config.json, modules.json, the pooling config, tokenizer.json,
model.safetensors) and writes the graph that torch's exporter followed by ONNX Runtime's transformer fusions
used to produce: EmbedLayerNormalization, then per layer Attention → MatMul → SkipLayerNormalization →
MatMul → BiasGelu → MatMul → SkipLayerNormalization (ONNX Runtime's contrib operators, which its CPU provider
runs and its int8 quantizer knows). `supported` says whether a folder is such a model; anything else (another
architecture, pooling, activation, a lower-casing Transformer module, .bin weights) goes to torch's exporter
in a child process (`onnx_cache`).

The graph is checked against `reference`, a plain numpy forward pass of the same model written from the BERT
paper's equations, on a few texts; the test suite checks both against sentence-transformers where torch is
installed (cosine >= 0.999 on 1,000 abstracts).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# safetensors dtypes this reader takes (BF16 is widened by hand: numpy has no bfloat16)
_DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "BF16": "<u2", "I64": "<i8", "I32": "<i4"}
_HEADER_LIMIT = 100 * 1024 * 1024  # the safetensors format's own bound on the JSON header


class UnsupportedModel(Exception):
    """The folder is not a model this builder reproduces exactly; the reason is the message."""


@dataclass(frozen=True)
class BertSpec:
    hidden: int
    heads: int
    layers: int
    intermediate: int
    eps: float
    max_positions: int
    max_seq_length: int
    pooling: str  # mean | cls | max
    normalize: bool
    pad_id: int
    dim: int
    weights_file: Path
    tokenizer_file: Path


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors file as a read-only numpy array over a memory map (floats as float32).

    The format: an 8-byte little-endian header length, a JSON header naming each tensor's dtype, shape and
    byte range, then the bytes. ValueError for a file that does not follow it.
    """
    size = path.stat().st_size
    with path.open("rb") as fh:
        raw = fh.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path}: too short for a safetensors file")
        (n,) = struct.unpack("<Q", raw)
        if n > min(_HEADER_LIMIT, size - 8):
            raise ValueError(f"{path}: header length {n} does not fit the file")
        header = json.loads(fh.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n, shape=(size - 8 - n,))
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        start, end = (int(x) for x in info["data_offsets"])
        shape = tuple(int(d) for d in info["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        if not 0 <= start <= end <= data.shape[0] or end - start != count * np.dtype(dtype).itemsize:
            raise ValueError(f"{path}: tensor {name} has a bad byte range")
        arr = data[start:end].view(dtype).reshape(shape)
        if info["dtype"] == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        elif info["dtype"] in ("F16", "F64"):
            arr = arr.astype(np.float32)
        out[name] = arr
    return out


def _json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UnsupportedModel(f"cannot read {path.name}: {exc}") from exc
    if not isinstance(value, dict | list):
        raise UnsupportedModel(f"{path.name} is not a JSON object")
    return value  # type: ignore[return-value]


def spec(folder: Path) -> BertSpec:
    """What the builder needs to know about `folder`, or UnsupportedModel with the reason."""
    modules = _json(folder / "modules.json") if (folder / "modules.json").is_file() else None
    if not isinstance(modules, list):
        raise UnsupportedModel("no modules.json (not a sentence-transformers model)")
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise UnsupportedModel(f"modules {kinds} are not Transformer → Pooling (→ Normalize)")
    if modules[0].get("path", "") not in ("", "."):
        raise UnsupportedModel("the Transformer module is not at the folder's top")
    config = _json(folder / "config.json")
    if config.get("model_type") != "bert":
        raise UnsupportedModel(f"model_type {config.get('model_type')!r} is not bert")
    if config.get("hidden_act") != "gelu":
        raise UnsupportedModel(f"activation {config.get('hidden_act')!r} is not gelu")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise UnsupportedModel("position embeddings are not absolute")
    st_conf = folder / "sentence_bert_config.json"
    st = _json(st_conf) if st_conf.is_file() else {}
    if st.get("do_lower_case"):
        raise UnsupportedModel("the Transformer module lower-cases texts itself")
    pool = _json(folder / str(modules[1].get("path", "1_Pooling")) / "config.json")
    modes = [k for k, v in pool.items() if k.startswith("pooling_mode_") and v]
    names = {
        "pooling_mode_mean_tokens": "mean",
        "pooling_mode_cls_token": "cls",
        "pooling_mode_max_tokens": "max",
    }
    if len(modes) != 1 or modes[0] not in names:
        raise UnsupportedModel(f"pooling {modes} is not exactly one of mean, cls, max")
    weights, tokenizer = folder / "model.safetensors", folder / "tokenizer.json"
    if not weights.is_file():
        raise UnsupportedModel("no model.safetensors")
    if not tokenizer.is_file():
        raise UnsupportedModel("no tokenizer.json")
    tok = _json(tokenizer)
    tok_conf = _json(folder / "tokenizer_config.json") if (folder / "tokenizer_config.json").is_file() else {}
    hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
    if hidden % heads:
        raise UnsupportedModel("hidden size is not a multiple of the heads")
    max_positions = int(config.get("max_position_embeddings", 512))
    model_max = int(tok_conf.get("model_max_length", max_positions) or max_positions)
    max_seq = int(st.get("max_seq_length") or min(model_max, max_positions))
    pad = (tok.get("padding") or {}).get("pad_id", config.get("pad_token_id", 0))
    return BertSpec(
        hidden=hidden,
        heads=heads,
        layers=int(config["num_hidden_layers"]),
        intermediate=int(config["intermediate_size"]),
        eps=float(config.get("layer_norm_eps", 1e-12)),
        max_positions=max_positions,
        max_seq_length=min(max_seq, max_positions),
        pooling=names[modes[0]],
        normalize=kinds[-1] == "Normalize",
        pad_id=int(pad or 0),
        dim=int(pool.get("word_embedding_dimension", hidden)),
        weights_file=weights,
        tokenizer_file=tokenizer,
    )


def supported(folder: Path) -> str | None:
    """None when `build_folder` can build `folder`, else the reason it cannot."""
    try:
        spec(folder)
    except UnsupportedModel as exc:
        return str(exc)
    except (KeyError, TypeError, ValueError) as exc:
        return f"unexpected configuration ({type(exc).__name__}: {exc})"
    return None


def bert_weights(s: BertSpec) -> dict[str, np.ndarray]:
    """The model's tensors under BertModel's names (a `bert.` prefix, as in BertForX checkpoints, dropped)."""
    tensors = read_safetensors(s.weights_file)
    for prefix in ("bert.", "model."):
        if f"{prefix}embeddings.word_embeddings.weight" in tensors:
            tensors = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    need = [f"embeddings.{n}" for n in ("word_embeddings.weight", "position_embeddings.weight")]
    for layer in range(s.layers):
        p = f"encoder.layer.{layer}."
        need += [p + n for n in ("attention.self.query.weight", "output.LayerNorm.bias")]
    missing = [n for n in need if n not in tensors]
    if missing:
        raise UnsupportedModel(f"the weights lack {missing[0]}")
    return tensors


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def build(s: BertSpec, w: dict[str, np.ndarray]) -> Any:
    """The fused ONNX graph (inputs input_ids, attention_mask, token_type_ids; output last_hidden_state)."""
    from onnx import TensorProto, helper, numpy_helper

    inits: list[Any] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value, name))
        return name

    types = w.get("embeddings.token_type_embeddings.weight")
    if types is None:
        types = np.zeros((1, s.hidden), dtype=np.float32)
    nodes = [helper.make_node("Cast", [n], [f"{n}_int32"], to=TensorProto.INT32) for n in _INPUTS]
    nodes.append(
        helper.make_node(
            "EmbedLayerNormalization",
            [
                "input_ids_int32",
                "token_type_ids_int32",
                const("word_embeddings", _f32(w["embeddings.word_embeddings.weight"])),
                const("position_embeddings", _f32(w["embeddings.position_embeddings.weight"])),
                const("token_type_embeddings", _f32(types)),
                const("embeddings_ln_weight", _f32(w["embeddings.LayerNorm.weight"])),
                const("embeddings_ln_bias", _f32(w["embeddings.LayerNorm.bias"])),
                "attention_mask_int32",
            ],
            ["embeddings", "mask_index"],
            domain="com.microsoft",
            epsilon=s.eps,
        )
    )
    x = "embeddings"
    for i in range(s.layers):
        p = f"encoder.layer.{i}."
        qkv_w = np.concatenate(
            [w[f"{p}attention.self.{n}.weight"].T for n in ("query", "key", "value")], axis=1
        )
        qkv_b = np.concatenate([w[f"{p}attention.self.{n}.bias"] for n in ("query", "key", "value")])
        last = i == s.layers - 1
        out = "last_hidden_state" if last else f"layer{i}_out"
        nodes += [
            helper.make_node(
                "Attention",
                [
                    x,
                    const(f"layer{i}_qkv_weight", _f32(qkv_w)),
                    const(f"layer{i}_qkv_bias", _f32(qkv_b)),
                    "mask_index",
                ],
                [f"layer{i}_context"],
                domain="com.microsoft",
                num_heads=s.heads,
            ),
            helper.make_node(
                "MatMul",
                [
                    f"layer{i}_context",
                    const(f"layer{i}_attn_out_weight", _f32(w[f"{p}attention.output.dense.weight"].T)),
                ],
                [f"layer{i}_attn_out"],
            ),
            helper.make_node(
                "SkipLayerNormalization",
                [
                    f"layer{i}_attn_out",
                    x,
                    const(f"layer{i}_attn_ln_weight", _f32(w[f"{p}attention.output.LayerNorm.weight"])),
                    const(f"layer{i}_attn_ln_bias", _f32(w[f"{p}attention.output.LayerNorm.bias"])),
                    const(f"layer{i}_attn_out_bias", _f32(w[f"{p}attention.output.dense.bias"])),
                ],
                [f"layer{i}_attn_norm"],
                domain="com.microsoft",
                epsilon=s.eps,
            ),
            helper.make_node(
                "MatMul",
                [
                    f"layer{i}_attn_norm",
                    const(f"layer{i}_ffn_in_weight", _f32(w[f"{p}intermediate.dense.weight"].T)),
                ],
                [f"layer{i}_ffn_in"],
            ),
            helper.make_node(
                "BiasGelu",
                [f"layer{i}_ffn_in", const(f"layer{i}_ffn_in_bias", _f32(w[f"{p}intermediate.dense.bias"]))],
                [f"layer{i}_gelu"],
                domain="com.microsoft",
            ),
            helper.make_node(
                "MatMul",
                [f"layer{i}_gelu", const(f"layer{i}_ffn_out_weight", _f32(w[f"{p}output.dense.weight"].T))],
                [f"layer{i}_ffn_out"],
            ),
            helper.make_node(
                "SkipLayerNormalization",
                [
                    f"layer{i}_ffn_out",
                    f"layer{i}_attn_norm",
                    const(f"layer{i}_ffn_ln_weight", _f32(w[f"{p}output.LayerNorm.weight"])),
                    const(f"layer{i}_ffn_ln_bias", _f32(w[f"{p}output.LayerNorm.bias"])),
                    const(f"layer{i}_ffn_out_bias", _f32(w[f"{p}output.dense.bias"])),
                ],
                [out],
                domain="com.microsoft",
                epsilon=s.eps,
            ),
        ]
        x = out
    graph = helper.make_graph(
        nodes,
        "bert_sentence_encoder",
        [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "tokens"]) for n in _INPUTS],
        [
            helper.make_tensor_value_info(
                "last_hidden_state", TensorProto.FLOAT, ["batch", "tokens", s.hidden]
            )
        ],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
        producer_name="paperboy.search.bert_onnx",
    )
    model.ir_version = 8  # opset 17's; older ONNX Runtimes refuse newer IR versions
    return model


_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return np.asarray((x - mu) / np.sqrt(var + eps) * g + b, dtype=np.float32)


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to ~1e-7 (Abramowitz & Stegun 7.1.26); numpy has none."""
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return np.asarray(s * (1.0 - poly * np.exp(-a * a)))


def reference(
    s: BertSpec, w: dict[str, np.ndarray], ids: np.ndarray, mask: np.ndarray, types: np.ndarray
) -> np.ndarray:
    """BERT's last hidden state computed with plain numpy: the check the built graph must agree with."""
    n, width = ids.shape
    f = {
        k: np.asarray(v, dtype=np.float32) for k, v in w.items() if k.startswith(("embeddings.L", "encoder."))
    }
    # only the rows of the embedding tables that the texts use
    x = np.asarray(w["embeddings.word_embeddings.weight"][ids.ravel()], dtype=np.float32)
    x = x + np.tile(np.asarray(w["embeddings.position_embeddings.weight"][:width], dtype=np.float32), (n, 1))
    if "embeddings.token_type_embeddings.weight" in w:
        x = x + np.asarray(w["embeddings.token_type_embeddings.weight"], dtype=np.float32)[types.ravel()]
    x = _layer_norm(x, f["embeddings.LayerNorm.weight"], f["embeddings.LayerNorm.bias"], s.eps)
    d = s.hidden // s.heads
    bias = np.where(mask[:, None, None, :] > 0, 0.0, -1e9).astype(np.float32)

    def heads(v: np.ndarray) -> np.ndarray:  # (n*width, hidden) -> (n, heads, width, d)
        return np.ascontiguousarray(v.reshape(n, width, s.heads, d).transpose(0, 2, 1, 3))

    for i in range(s.layers):
        p = f"encoder.layer.{i}."

        def lin(v: np.ndarray, name: str, p: str = p) -> np.ndarray:
            return np.asarray(v @ f[f"{p}{name}.weight"].T + f[f"{p}{name}.bias"], dtype=np.float32)

        q, k, v = (heads(lin(x, f"attention.self.{m}")) for m in ("query", "key", "value"))
        scores = np.einsum("bhqd,bhkd->bhqk", q, k) / np.float32(np.sqrt(d)) + bias
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        ctx = np.einsum("bhqk,bhkd->bhqd", scores / scores.sum(axis=-1, keepdims=True), v)
        ctx = ctx.transpose(0, 2, 1, 3).reshape(n * width, s.hidden)
        x = _layer_norm(
            x + lin(ctx, "attention.output.dense"),
            f[f"{p}attention.output.LayerNorm.weight"],
            f[f"{p}attention.output.LayerNorm.bias"],
            s.eps,
        )
        h = lin(x, "intermediate.dense")
        h = 0.5 * h * (1.0 + _erf(h / np.float32(np.sqrt(2.0))))
        x = _layer_norm(
            x + lin(h, "output.dense"),
            f[f"{p}output.LayerNorm.weight"],
            f[f"{p}output.LayerNorm.bias"],
            s.eps,
        )
    return x.reshape(n, width, s.hidden)


def build_folder(folder: Path, out: Path) -> dict[str, Any]:
    """Write `out/model.onnx` and `out/tokenizer.json` for the model in `folder`; returns the meta fields
    (dim, pooling, normalize, max_seq_length, max_positions, pad_id). UnsupportedModel when it cannot."""
    import shutil

    import onnx

    s = spec(folder)
    w = bert_weights(s)
    model = build(s, w)
    onnx.save(model, str(out / "model.onnx"))
    del model
    shutil.copyfile(s.tokenizer_file, out / "tokenizer.json")
    return {
        "dim": s.dim,
        "pooling": s.pooling,
        "normalize": s.normalize,
        "max_seq_length": s.max_seq_length,
        "max_positions": s.max_positions,
        "pad_id": s.pad_id,
    }
