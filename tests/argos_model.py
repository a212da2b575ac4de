"""Build a tiny, real Argos Translate package that translates word for word.

No Argos models are available offline, so the test suite makes its own: a genuine
CTranslate2 ``TransformerSpec`` (1 encoder + 1 decoder layer, 1 head, RMSNorm) whose
weights are set by hand, plus a SentencePiece ``word`` tokenizer, zipped in Argos'
package layout. It installs with ``argostranslate.package.install_from_path`` and loads
through the normal ``Package`` / ``ctranslate2.Translator`` path.

How the hand-set network translates (d = V + P: V token dims, then P position dims):

* Encoder: embeddings are one-hot tokens (not scaled), learned position encodings are
  one-hot positions, self-attention and FFN output zero, so the encoder output at source
  position s is ``e_tok(src[s]) + e_pos(s)`` (the final RMSNorm gain undoes the norm).
  ``add_source_eos`` makes CTranslate2 append ``</s>`` to every source.
* Decoder: target embeddings are zero, so the state at step t is ``e_pos(t)``.
  Cross-attention queries/keys read the position block with a large scale, so step t
  attends to source position t; values/output copy that source token's one-hot into
  the token block. A query bias also gives the source ``</s>`` a smaller constant score,
  so steps past the end of the source (beam search keeps extending non-best beams when
  ``length_penalty`` != 0, as in Argos) attend to ``</s>`` and end too.
  The output projection maps source token i to the logit of target token
  ``mapping[i]`` (identity for other words; ``</s>`` → ``</s>``, ``<unk>`` → ``<unk>``,
  which ``replace_unknowns`` turns back into the source word).

All weights are one-hot rows with one magnitude each, so int8 quantization (Argos'
``compute_type="auto"`` on CPU) is exact.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ctranslate2.specs.transformer_spec import TransformerSpec

#: Longest sentence (in tokens, including the appended ``</s>``) the model can handle.
MAX_POSITIONS = 256
#: Margin between the right logit and every other one.
LOGIT_SCALE = 30.0
#: Attention score (after CTranslate2's 1/sqrt(head_dim)) on the aligned position.
ATTENTION_SCORE = 40.0
#: Attention score every decoder step gives the source ``</s>`` (below ATTENTION_SCORE,
#: so it only wins once the decoder has run past the end of the source).
EOS_ATTENTION_SCORE = 20.0

_SPECIAL_PIECES = ("<unk>", "<s>", "</s>")
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)

_LANGUAGE_NAMES = {
    "en": "English",
    "es": "Spanish",
    "fr": "French",
    "de": "German",
    "it": "Italian",
    "pt": "Portuguese",
}


def build_argosmodel(
    dest_dir: Path, from_code: str, to_code: str, mapping: dict[str, str]
) -> Path:
    """Build <dest_dir>/translate-<from>_<to>.argosmodel: a word-for-word translation model."""
    _check_mapping(mapping)
    dest_dir.mkdir(parents=True, exist_ok=True)
    package_name = f"translate-{from_code}_{to_code}"
    sp_model = _train_sentencepiece(mapping)
    _check_one_piece_per_word(sp_model, mapping)
    pieces = _sentencepiece_pieces(sp_model)
    metadata = {
        "package_version": "1.0",
        "argos_version": "1.0",
        "from_code": from_code,
        "from_name": _LANGUAGE_NAMES.get(from_code, from_code),
        "to_code": to_code,
        "to_name": _LANGUAGE_NAMES.get(to_code, to_code),
        "type": "translate",
        "links": [],
    }
    files: dict[str, bytes] = {
        "metadata.json": (json.dumps(metadata, indent=2, sort_keys=True) + "\n").encode(),
        "README.md": (
            f"# Test model {from_code} → {to_code}\n\n"
            "Hand-built word-for-word CTranslate2 model for unionhub's tests.\n"
        ).encode(),
        "sentencepiece.model": sp_model,
    }
    for name, data in _ctranslate2_model_files(pieces, mapping).items():
        files[f"model/{name}"] = data

    archive = dest_dir / f"{package_name}.argosmodel"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipf:
        for directory in (f"{package_name}/", f"{package_name}/model/"):
            zipf.writestr(zipfile.ZipInfo(directory, date_time=_ZIP_DATE), b"")
        for name in sorted(files):
            info = zipfile.ZipInfo(f"{package_name}/{name}", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            zipf.writestr(info, files[name])
    return archive


def _check_mapping(mapping: dict[str, str]) -> None:
    """Reject mappings that a one-piece-per-word tokenizer cannot represent."""
    if not mapping:
        raise ValueError("mapping must not be empty")
    for word in (*mapping.keys(), *mapping.values()):
        if not word or any(ch.isspace() for ch in word) or word in _SPECIAL_PIECES:
            raise ValueError(f"mapping words must be single non-special words: {word!r}")


def _train_sentencepiece(mapping: dict[str, str]) -> bytes:
    """Train a SentencePiece ``word`` model whose vocabulary is exactly the mapping's words."""
    import sentencepiece as spm

    words = sorted(set(mapping) | set(mapping.values()))
    corpus = [f"{source} {target}" for source, target in sorted(mapping.items())] + words
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus),
        model_writer=model,
        model_type="word",
        vocab_size=len(words) + len(_SPECIAL_PIECES),
        hard_vocab_limit=False,
        character_coverage=1.0,
        normalization_rule_name="identity",
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        num_threads=1,
        minloglevel=2,
    )
    return model.getvalue()


def _sentencepiece_pieces(sp_model: bytes) -> list[str]:
    """The model's pieces in id order (these are also the CTranslate2 vocabulary)."""
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_proto=sp_model)
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    if tuple(pieces[: len(_SPECIAL_PIECES)]) != _SPECIAL_PIECES:
        raise RuntimeError(f"unexpected special pieces: {pieces[:3]}")
    return pieces


def _check_one_piece_per_word(sp_model: bytes, mapping: dict[str, str]) -> None:
    """Every mapping word must tokenize to the single piece ``▁word``."""
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_proto=sp_model)
    for word in sorted(set(mapping) | set(mapping.values())):
        if processor.encode(word, out_type=str) != ["▁" + word]:
            raise ValueError(f"{word!r} is not a single SentencePiece word piece")


def _ctranslate2_model_files(pieces: list[str], mapping: dict[str, str]) -> dict[str, bytes]:
    """Build the hand-weighted Transformer and return the files of its model directory."""
    from ctranslate2.specs import transformer_spec

    spec = transformer_spec.TransformerSpec.from_config(
        (1, 1), num_heads=1, pre_norm=True, rms_norm=True
    )
    _set_weights(spec, pieces, mapping)
    spec.config.add_source_eos = True  # source </s> → target </s> ends the translation
    spec.register_source_vocabulary(pieces)
    spec.register_target_vocabulary(pieces)
    spec.validate()
    with tempfile.TemporaryDirectory() as tmp:
        spec.save(tmp)
        return {path.name: path.read_bytes() for path in sorted(Path(tmp).iterdir())}


def _set_weights(spec: TransformerSpec, pieces: list[str], mapping: dict[str, str]) -> None:
    """Fill every variable of ``spec`` as described in the module docstring."""
    vocab, positions = len(pieces), MAX_POSITIONS
    depth = vocab + positions
    tok = slice(0, vocab)
    index = {piece: i for i, piece in enumerate(pieces)}
    pos = slice(vocab, depth)
    f32 = np.float32

    def zeros(*shape: int) -> np.ndarray:
        return np.zeros(shape, dtype=f32)

    def gain(value: float) -> np.ndarray:
        return np.full(depth, value, dtype=f32)

    position_table = zeros(positions, depth)
    position_table[:, pos] = np.eye(positions, dtype=f32)

    def silence_self_attention(attention: Any) -> None:
        attention.layer_norm.gamma = gain(1.0)
        attention.linear[0].weight = zeros(3 * depth, depth)
        attention.linear[0].bias = zeros(3 * depth)
        attention.linear[1].weight = zeros(depth, depth)
        attention.linear[1].bias = zeros(depth)

    def silence_ffn(ffn: Any, hidden: int = 4) -> None:
        ffn.layer_norm.gamma = gain(1.0)
        ffn.linear_0.weight = zeros(hidden, depth)
        ffn.linear_0.bias = zeros(hidden)
        ffn.linear_1.weight = zeros(depth, hidden)
        ffn.linear_1.bias = zeros(depth)

    # Encoder: output = e_tok + e_pos (RMS of a two-hot vector is sqrt(2/depth)).
    encoder: Any = spec.encoder
    source_embeddings = zeros(vocab, depth)
    source_embeddings[:, tok] = np.eye(vocab, dtype=f32)
    encoder.embeddings[0].weight = source_embeddings
    encoder.scale_embeddings = False
    encoder.position_encodings.encodings = position_table
    silence_self_attention(encoder.layer[0].self_attention)
    silence_ffn(encoder.layer[0].ffn)
    encoder.layer_norm.gamma = gain(np.sqrt(2.0 / depth))

    # Decoder: state = e_pos(t); cross-attention adds e_tok(src[t]).
    decoder: Any = spec.decoder
    decoder.embeddings.weight = zeros(vocab, depth)
    decoder.scale_embeddings = False
    decoder.position_encodings.encodings = position_table
    layer = decoder.layer[0]
    silence_self_attention(layer.self_attention)
    silence_ffn(layer.ffn)

    cross = layer.attention
    cross.layer_norm.gamma = gain(1.0 / np.sqrt(depth))  # RMSNorm(e_pos) → e_pos
    query = zeros(depth, depth)
    query[pos, pos] = np.eye(positions, dtype=f32) * ATTENTION_SCORE * np.sqrt(depth)
    cross.linear[0].weight = query
    query_bias = zeros(depth)
    query_bias[0] = EOS_ATTENTION_SCORE * np.sqrt(depth)  # every query looks for </s> ...
    cross.linear[0].bias = query_bias
    key_value = zeros(2 * depth, depth)
    key_value[pos, pos] = np.eye(positions, dtype=f32)  # keys: source position
    key_value[0, index["</s>"]] = 1.0  # ... which only wins past the end of the source
    key_value[depth : depth + vocab, tok] = np.eye(vocab, dtype=f32)  # values
    cross.linear[1].weight = key_value
    cross.linear[1].bias = zeros(2 * depth)
    output = zeros(depth, depth)
    output[tok, tok] = np.eye(vocab, dtype=f32)
    cross.linear[2].weight = output
    cross.linear[2].bias = zeros(depth)

    decoder.layer_norm.gamma = gain(np.sqrt(2.0 / depth))
    projection = zeros(vocab, depth)
    for source_id, piece in enumerate(pieces):
        word = piece[1:] if piece.startswith("▁") else None
        target = mapping.get(word, word) if word is not None else None
        target_id = index.get("▁" + target, source_id) if target is not None else source_id
        projection[target_id, source_id] = LOGIT_SCALE
    decoder.projection.weight = projection
    decoder.projection.bias = zeros(vocab)


# -- installing built packages ------------------------------------------------------------

# Runs in a fresh interpreter (argostranslate reads ARGOS_PACKAGES_DIR and creates its XDG
# dirs at import time); the network is blocked, since installing a local file needs none.
_INSTALL_CHILD = """
import socket, sys
from pathlib import Path

def _no_network(*args, **kwargs):
    raise OSError("network access is disabled while installing test models")

socket.socket.connect = _no_network
socket.socket.connect_ex = _no_network

import argostranslate.package

for archive in sys.argv[1:]:
    argostranslate.package.install_from_path(Path(archive))
"""


def argos_env(packages_dir: Path, home: Path) -> dict[str, str]:
    """Environment overrides that point argostranslate at ``packages_dir`` and keep it out of ~.

    ``home`` stands in for HOME and the XDG data/config/cache dirs (argostranslate creates
    directories there when imported).
    """
    return {
        "ARGOS_PACKAGES_DIR": str(packages_dir),
        "ARGOS_DEVICE_TYPE": "cpu",
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_CACHE_HOME": str(home / "cache"),
    }


def install_argos_models(packages_dir: Path, models: list[Path]) -> None:
    """Install ``.argosmodel`` files into ``packages_dir`` the way Argos does.

    Uses ``argostranslate.package.install_from_path`` in a subprocess with
    ``ARGOS_PACKAGES_DIR=packages_dir``, so each package ends up in
    ``packages_dir/<package name>/`` (e.g. ``translate-en_es/``), exactly where
    ``unionhub models install`` puts them for ``ARGOS_PACKAGES_DIR=<models>/argos``.
    """
    import os
    import subprocess
    import sys

    packages_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="argos-home-") as home:
        env = {**os.environ, **argos_env(packages_dir, Path(home))}
        proc = subprocess.run(
            [sys.executable, "-c", _INSTALL_CHILD, *(str(m) for m in models)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"installing {[m.name for m in models]} failed:\n{proc.stderr}")


def crash_worker(*args: object) -> None:
    """Stand-in for a worker function that kills its worker process (any arguments)."""
    import os

    os._exit(3)
