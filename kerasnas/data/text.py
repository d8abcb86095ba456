"""Character-level language modelling data from a text file (`load("text:PATH")`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerasnas.data.checks import Splits

#: Debian's `fortunes` package: English text (about 2.5 MB) every machine here can install.
FORTUNES_DIR = "/usr/share/games/fortunes"
#: Shares of the text for validation and test: contiguous pieces at its end.
TEXT_SPLIT = (0.9, 0.05, 0.05)


def vocabulary(text: str) -> str:
    """The characters of a text, sorted: character `vocabulary[i]` has token i."""
    return "".join(sorted(set(text)))


def read_text(path: str | Path) -> str:
    """A text file, or every file of a folder (sorted by name, `.dat` index files skipped)."""
    place = Path(path).expanduser()
    if place.is_dir():
        files = sorted(p for p in place.iterdir() if p.is_file() and p.suffix != ".dat")
        files = [p for p in files if not p.is_symlink()]
        if not files:
            raise FileNotFoundError(f"text:{path}: the folder {place.resolve()} holds no files.")
    elif place.is_file():
        files = [place]
    else:
        raise FileNotFoundError(f"text:{path}: there is no file or folder {place.resolve()}.")
    parts = []
    for file in files:
        data = file.read_bytes()
        if b"\x00" in data[:4096]:
            raise ValueError(f"text:{path}: {file} is not a text file (it holds NUL bytes).")
        parts.append(data.decode("utf-8", errors="replace"))
    return "\n".join(parts)


def _load_text(path: str, *, seq_len: int | None = None) -> Splits:
    """The windows of `seq_len` characters of a text, as next-character prediction pairs.

    The text is cut in three contiguous pieces (90%, 5%, 5%: `TEXT_SPLIT`), for
    training, validation and test; each piece is cut into non-overlapping
    windows. `x` holds a window's tokens and `y` the same window shifted by one
    character, both int64 of shape (N, seq_len); tokens are indices into the
    sorted characters of the whole text (`vocabulary`).
    """
    if not path:
        raise ValueError("'text:' needs a path, e.g. load('text:corpus.txt', seq_len=64).")
    seq_len = 64 if seq_len is None else seq_len
    if isinstance(seq_len, bool) or not isinstance(seq_len, (int, np.integer)) or seq_len < 1:
        raise ValueError(f"seq_len must be an integer >= 1. Received: seq_len={seq_len!r}.")
    text = read_text(path)
    chars = vocabulary(text)
    lookup = {c: i for i, c in enumerate(chars)}
    tokens = np.fromiter((lookup[c] for c in text), dtype=np.int64, count=len(text))
    ends = np.cumsum([int(len(tokens) * share) for share in TEXT_SPLIT[:2]])
    pieces = (tokens[: ends[0]], tokens[ends[0] : ends[1]], tokens[ends[1] :])
    splits = []
    for piece, name in zip(pieces, ("training", "validation", "test"), strict=True):
        windows = (len(piece) - 1) // seq_len
        if windows < 1:
            raise ValueError(
                f"text:{path}: its {name} piece ({len(piece):,} of {len(text):,} characters) "
                f"is shorter than one window of seq_len={seq_len} characters plus one; use a "
                "longer text or a smaller seq_len."
            )
        used = piece[: windows * seq_len + 1]
        x = used[:-1].reshape(windows, seq_len)
        y = used[1:].reshape(windows, seq_len)
        splits.append((x, y))
    return tuple(splits)  # type: ignore[return-value]
