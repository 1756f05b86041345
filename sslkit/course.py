"""Run the course headless: ``python -m sslkit.course`` (what ``make run`` calls).

Each lecture notebook in ``notebooks/`` is executed top to bottom in a fresh kernel (nbclient)
in the ``quick`` profile (unless ``SSLKIT_PROFILE`` says otherwise). For each notebook the runner
saves the executed copy and an HTML export under ``build/`` (it works offline: widgets show
their static fallback), collects the numbers the notebook recorded with
:func:`sslkit.report.record` and its wall time into ``build/results.json``::

    {"00_tour_and_protocol": {"seconds": 71.2, "status": "ok", "metrics": {...}}, ...}

and prints a table. A failing notebook does not stop the others; the runner names the failing
cell and exits with status 1 at the end.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from . import profiles

# Seconds one cell may run before the runner calls it hung: a quick cell trains for about a
# CPU minute; a full one for tens of thousands of steps on a GPU (lecture headers: 15-30 minutes
# per notebook), most of it in a few cells.
CELL_TIMEOUT = {"quick": 600, "full": 4 * 3600}


def _failing_cell(nb) -> str:
    """Describe the first cell whose outputs hold an error: index and first source line."""
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                first = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
                return f"cell {i} ({first.strip()[:60]!r}): {out.get('ename')}: {out.get('evalue')}"
    return "unknown cell"


def run_notebook(path: Path, out_dir: Path, *, timeout: int = 600, profile: str = "quick") -> dict:
    """Execute one notebook; return ``{"seconds", "status", "metrics"[, "error"]}``."""
    nb = nbformat.read(path, as_version=4)
    metrics_file = out_dir / "metrics" / f"{path.stem}.json"
    metrics_file.parent.mkdir(parents=True, exist_ok=True)
    metrics_file.unlink(missing_ok=True)
    env = {"SSLKIT_PROFILE": os.environ.get("SSLKIT_PROFILE", profile),
           "SSLKIT_NOTEBOOK": path.stem, "SSLKIT_RESULTS": str(metrics_file.resolve()),
           "SSLKIT_PROGRESS": os.environ.get("SSLKIT_PROGRESS", "0"),
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits the runner's environment
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    result = {"status": "ok"}
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as err:
        result = {"status": "failed", "error": _failing_cell(nb) if isinstance(
            err, CellExecutionError) else f"{type(err).__name__}: {str(err)[:200]}"}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    result["seconds"] = round(time.perf_counter() - start, 1)
    result["metrics"] = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    executed = out_dir / "notebooks" / path.name
    executed.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, executed)
    _export_html(nb, out_dir / "html" / f"{path.stem}.html")
    return result


_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _export_html(nb, target: Path) -> None:
    """Export ``nb`` as a page that works offline: each widget output shows its static fallback
    (a panel's ``text/html``: figure, numbers and the run-the-cells hint) instead of a
    placeholder that loads the widget renderer from a CDN; the saved widget state is dropped."""
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    default = HTMLExporter().default_config.NbConvertBase.display_data_priority
    priority = [m for m in default if m != _WIDGET_VIEW]
    exporter = HTMLExporter(config=Config({"NbConvertBase": {"display_data_priority": priority}}))
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)  # no widget state: the page loads no script from a CDN
    target.parent.mkdir(parents=True, exist_ok=True)
    body, _ = exporter.from_notebook_node(nb)
    target.write_text(body, encoding="utf-8")


def format_table(results: dict) -> str:
    """A plain-text table: notebook, status, seconds, then one line per metric."""
    lines = [f"{'notebook':<36} {'status':<7} {'seconds':>8}  metrics", "-" * 90]
    for name, r in results.items():
        metrics = r.get("metrics", {})
        items = [f"{k}={v:.3f}" for k, v in sorted(metrics.items())] or ["-"]
        lines.append(f"{name:<36} {r['status']:<7} {r['seconds']:>8.1f}  {items[0]}")
        lines.extend(f"{'':<54}{item}" for item in items[1:])
        if r["status"] != "ok":
            lines.append(f"{'':<8}FAILED at {r.get('error')}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: run the notebooks, write ``results.json``, print the table; exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", default=["notebooks"],
                        help="notebook files or folders (default: notebooks/)")
    parser.add_argument("--out", default="build", help="output folder (default: build/)")
    parser.add_argument("--timeout", type=int, default=None,
                        help="seconds per cell (default: 600 in quick, 14,400 in full)")
    args = parser.parse_args(argv)
    profile = profiles.profile() if os.environ.get("SSLKIT_PROFILE") else "quick"
    timeout = args.timeout or CELL_TIMEOUT[profile]

    paths: list[Path] = []
    for item in map(Path, args.notebooks):
        paths.extend(sorted(item.glob("[0-9][0-9]_*.ipynb")) if item.is_dir() else [item])
    if not paths:
        print(f"no notebooks found in {args.notebooks}", file=sys.stderr)
        return 1
    out = Path(args.out)
    results = {}
    for path in paths:
        print(f"running {path} ...", flush=True)
        results[path.stem] = run_notebook(path, out, timeout=timeout, profile=profile)
        r = results[path.stem]
        print(f"  {r['status']} in {r['seconds']:.1f} s" +
              (f": {r['error']}" if r["status"] != "ok" else ""), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print()
    print(format_table(results))
    print(f"\nwrote {out / 'results.json'}, executed notebooks in {out / 'notebooks'}, "
          f"HTML in {out / 'html'}")
    return 0 if all(r["status"] == "ok" for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
