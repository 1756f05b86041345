"""Normalise a notebook's JSON to the form the repository stores, so opening it does not dirty it.

JupyterLab rewrites a notebook it opens with the running kernel's ``kernelspec`` and
``language_info`` (Python version included) and, because the browser parses the JSON, with every
integral float written as an int (``-2.0`` becomes ``-2``). Both normalise here: the kernelspec is
the one ``make lab`` runs (``python3``, "Python 3 (ipykernel)"), ``language_info.version`` is
dropped, integral floats become ints, and the text is nbformat's (sorted keys, indent 1, one
trailing newline). Cell sources and outputs are untouched. Standard library only.

    python3 tools/nbnormalize.py < in.ipynb > out.ipynb   the git clean filter (stdin → stdout)
    python3 tools/nbnormalize.py --check FILE...          exit 1 naming files not in normal form
    python3 tools/nbnormalize.py --fix FILE...            rewrite files in normal form
    python3 tools/nbnormalize.py --install                set up the git filter in this clone

``.gitattributes`` assigns ``filter=nbnormalize`` to the lecture notebooks; ``make lab`` runs
``--install`` (``git config filter.nbnormalize.clean``), so ``git status`` and ``git diff`` see a
notebook JupyterLab saved as unchanged unless a cell or an output changed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def _ints(value):
    """Integral floats as ints (what a browser's JSON round trip leaves), recursively."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def normalize(text: str) -> str:
    """The stored form of a notebook's text; text that is not a notebook comes back unchanged."""
    try:
        nb = json.loads(text)
    except ValueError:
        return text
    if not (isinstance(nb, dict) and isinstance(nb.get("metadata"), dict) and "cells" in nb):
        return text
    meta = nb["metadata"]
    if meta.get("kernelspec", {}).get("language", "python") == "python":
        meta["kernelspec"] = dict(KERNELSPEC)
    if isinstance(meta.get("language_info"), dict):
        meta["language_info"].pop("version", None)
    return json.dumps(_ints(nb), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    if not argv:  # the git filter: stdin → stdout, bytes in UTF-8
        sys.stdout.buffer.write(normalize(sys.stdin.buffer.read().decode("utf-8")).encode())
        return 0
    if argv[0] == "--install":
        clean = "python3 tools/nbnormalize.py"
        subprocess.run(["git", "config", "filter.nbnormalize.clean", clean], check=True)
        return 0
    if argv[0] not in ("--check", "--fix") or len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    stale = []
    for path in map(Path, argv[1:]):
        text = path.read_text(encoding="utf-8")
        if normalize(text) != text:
            stale.append(str(path))
            if argv[0] == "--fix":
                path.write_text(normalize(text), encoding="utf-8")
    if stale and argv[0] == "--check":
        print("not in normal form (python3 tools/nbnormalize.py --fix FILE...):\n  "
              + "\n  ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
