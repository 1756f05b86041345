"""Reading the lecture notebooks' text for ``tests/test_lecture_text.py``.

Every check is a function of plain data (a list of cells as stored in the ``.ipynb`` JSON, and
numbers from ``sslkit.profiles``) that returns a list of problems, one sentence each, that name
the cell (``cell [i]``, its 0-based index in the notebook) and what to fix. An empty list is a
pass. The tests call them on the committed notebooks and on small synthetic cells built with
:func:`md` and :func:`code`, so that each check is shown to fail on the defect it targets.

The format these checks enforce is written down in CONTRIBUTING.md, "The lecture template".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LECTURES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
EXERCISES = sorted((ROOT / "exercises").glob("[0-9][0-9]_*.ipynb"))

LAB_PLAN_LINE = "**Lab plan** (quick profile, 2 CPU cores)"
TABLE_HEADER = ["Section", "Reading", "Running", "Part"]
LAB_MINUTES = 90
INSTRUCTOR_BOX = "> **For instructors.**"
INSTRUCTOR_BULLETS = ("Before the lab", "Live-code", "Optional / homework",
                      "Where learners get stuck")
CPU_WHEELS = "download.pytorch.org/whl/cpu"
PREDICT_FIRST = "> **Predict first.**"


# ---------------------------------------------------------------------------- cells
def read_cells(path: Path) -> list[dict]:
    """The cells of the notebook at ``path`` as stored (``source`` joined into one string)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    for cell in cells:
        if isinstance(cell["source"], list):
            cell["source"] = "".join(cell["source"])
    return cells


def md(text: str) -> dict:
    """A synthetic markdown cell."""
    return {"cell_type": "markdown", "source": text, "metadata": {}}


def code(source: str = "pass", printed: str = "", seconds: float | None = 1.0) -> dict:
    """A synthetic code cell that printed ``printed`` and ran ``seconds`` (``None``: no timing
    metadata, as in a notebook saved by an editor that does not record it)."""
    meta = {}
    if seconds is not None:
        meta["execution"] = {"iopub.execute_input": "2026-01-01T00:00:00.000000Z",
                             "shell.execute_reply": _stamp(seconds)}
    outputs = [{"output_type": "stream", "name": "stdout", "text": printed}] if printed else []
    return {"cell_type": "code", "source": source, "metadata": meta, "outputs": outputs}


def _stamp(seconds: float) -> str:
    whole, frac = divmod(seconds, 1)
    hours, rest = divmod(int(whole), 3600)
    return f"2026-01-01T{hours:02d}:{rest // 60:02d}:{rest % 60:02d}.{int(frac * 1e6):06d}Z"


def _without_fences(text: str) -> list[str]:
    """The lines of a markdown text outside fenced code blocks (a ``## `` in a fence is code)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def headings(cells: list[dict]) -> list[tuple[int, str]]:
    """Every ``## `` heading: ``(cell index, the text after "## ")``, in order."""
    return [(i, line[3:].strip()) for i, c in enumerate(cells) if c["cell_type"] == "markdown"
            for line in _without_fences(c["source"]) if line.startswith("## ")]


def header_index(cells: list[dict]) -> int | None:
    """The index of the header: the first markdown cell."""
    return next((i for i, c in enumerate(cells) if c["cell_type"] == "markdown"), None)


def sentences(text: str) -> list[str]:
    """``text`` cut into sentences: at ``.``, ``!`` or ``?`` before white space, and at blank
    lines. Decimal points (``0.25``) and abbreviations inside a word do not cut."""
    parts = []
    for paragraph in re.split(r"\n\s*\n", text):
        parts += [p.strip() for p in re.split(r"(?<=[.!?])\s+", paragraph) if p.strip()]
    return parts


# ---------------------------------------------------------------------------- check 1: lab plan
@dataclass
class Row:
    section: str
    reading_min: float | None
    running_s: float | None
    part: str
    running_text: str = ""


@dataclass
class LabPlan:
    sections: list[Row] = field(default_factory=list)
    exercise: Row | None = None
    total: Row | None = None


_RUNNING = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|min)$")
_READING = re.compile(r"^(\d+)\s*min$")
_NUMBERED = re.compile(r"^(\d+)\. \S")


def parse_running(text: str) -> float | None:
    """``"10 s"`` → 10.0, ``"2 min"`` → 120.0; ``None`` if it is neither form."""
    m = _RUNNING.match(text.strip())
    return None if m is None else float(m[1]) * (60 if m[2] == "min" else 1)


def _running_unit(text: str) -> float:
    """The rounding unit of a running time as written: 1 s, 1 min, 0.5 min → 0.1 min, …"""
    m = _RUNNING.match(text.strip())
    decimals = len(m[1].partition(".")[2])
    return 10.0 ** -decimals * (60 if m[2] == "min" else 1)


def parse_reading(text: str) -> float | None:
    """``"5 min"`` → 5.0 (whole minutes only); ``None`` otherwise."""
    m = _READING.match(text.strip())
    return None if m is None else float(m[1])


def _table_cells(line: str) -> list[str]:
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", inner)]


def parse_lab_plan(header: str, number: str) -> tuple[LabPlan | None, list[str]]:
    """The lab plan table at the end of ``header`` (the lecture's first markdown cell), and the
    problems of its format. ``number`` is the lecture's two digits (the "Exercise NN" row)."""
    lines = header.rstrip().splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == LAB_PLAN_LINE]
    if not starts:
        return None, [f"the header has no '{LAB_PLAN_LINE}' line: end the header with it and "
                      "the table (format: CONTRIBUTING.md, 'The lecture template')"]
    rest = [line for line in lines[starts[-1] + 1:]]
    while rest and not rest[0].strip():
        rest.pop(0)
    table = []
    while rest and rest[0].lstrip().startswith("|"):
        table.append(rest.pop(0))
    problems = []
    if any(line.strip() for line in rest):
        problems.append("the header must end with the lab plan table: move the text after the "
                        "table above the '**Lab plan**' line")
    if len(table) < 2 or _table_cells(table[0]) != TABLE_HEADER or not re.fullmatch(
            r"\|?(\s*:?-+:?\s*\|){3}\s*:?-+:?\s*\|?", table[1].strip()):
        return None, problems + ["the lab plan table must start with '| Section | Reading | "
                                 "Running | Part |' and '|---|---|---|---|'"]
    plan = LabPlan()
    for line in table[2:]:
        cells = _table_cells(line)
        if len(cells) != 4:
            problems.append(f"lab plan row '{line.strip()}' has {len(cells)} columns, not 4")
            continue
        name, reading, running, part = cells
        row = Row(name, parse_reading(reading), parse_running(running), part, running)
        if row.reading_min is None:
            problems.append(f"lab plan row '{name}': Reading '{reading}' is not whole minutes "
                            "('5 min')")
        if row.running_s is None:
            problems.append(f"lab plan row '{name}': Running '{running}' is not 'N s' or "
                            "'N min'")
        if name == "Total (core)":
            if plan.total is not None:
                problems.append("the lab plan has two 'Total (core)' rows")
            plan.total = row
            if part:
                problems.append("the 'Total (core)' row's Part column must be empty")
            continue
        if plan.total is not None:
            problems.append(f"lab plan row '{name}' comes after 'Total (core)': the total is "
                            "the last row")
        if name.startswith("Exercise"):
            if name != f"Exercise {number}":
                problems.append(f"lab plan row '{name}': the exercise row is 'Exercise {number}'")
            if plan.exercise is not None:
                problems.append("the lab plan has two exercise rows")
            plan.exercise = row
            if part != "core":
                problems.append(f"lab plan row '{name}': the exercise is part of the lab, so its "
                                "Part is 'core'")
            continue
        if plan.exercise is not None:
            problems.append(f"lab plan row '{name}' comes after the exercise row: sections "
                            "first, then 'Exercise NN', then 'Total (core)'")
        if part not in ("core", "optional"):
            problems.append(f"lab plan row '{name}': Part '{part}' is neither 'core' nor "
                            "'optional'")
        plan.sections.append(row)
    if plan.exercise is None:
        problems.append(f"the lab plan has no 'Exercise {number}' row")
    if plan.total is None:
        problems.append("the lab plan has no 'Total (core)' row")
    return plan, problems


def _first_paragraph_after(cells: list[dict], index: int, title: str) -> str:
    """The heading ``## title`` (in cell ``index``) and the first paragraph after it."""
    text = cells[index]["source"].split("## " + title, 1)[-1]
    following = [c["source"] for c in cells[index + 1:index + 3] if c["cell_type"] == "markdown"]
    paragraphs = [p for p in re.split(r"\n\s*\n", "\n\n".join([text, *following])) if p.strip()]
    return title + "\n" + (paragraphs[0] if paragraphs else "")


def lab_plan_problems(cells: list[dict], number: str) -> tuple[LabPlan | None, list[str]]:
    """Check 1: the header's lab plan against the lecture's ``## N. Title`` headings, the parts,
    the 90-minute lab and the total. Return the parsed plan (``None`` if there is no table) and
    the problems."""
    h = header_index(cells)
    if h is None:
        return None, ["the notebook has no markdown cell (no header)"]
    plan, problems = parse_lab_plan(cells[h]["source"], number)
    problems = [f"cell [{h}] (header): {p}" for p in problems]
    found = headings(cells)
    for k, (i, title) in enumerate(found, start=1):
        m = _NUMBERED.match(title)
        if m is None:
            problems.append(f"cell [{i}]: heading '## {title}' is not numbered: write "
                            f"'## {k}. {title}' and give it a row in the lab plan")
        elif int(m[1]) != k:
            problems.append(f"cell [{i}]: heading '## {title}' should be number {k} (sections "
                            "are numbered 1, 2, 3, … in order)")
    if plan is None:
        return None, problems
    titles = [t for _, t in found]
    rows = [r.section for r in plan.sections]
    for i, title in found:
        if title not in rows:
            problems.append(f"cell [{i}]: heading '## {title}' has no row in the lab plan (the "
                            "row's Section is the text after '## ', copied exactly)")
    for name in rows:
        if name not in titles:
            problems.append(f"cell [{h}] (header): lab plan row '{name}' matches no '## ' "
                            "heading of the lecture (copy the heading's text exactly)")
    if set(rows) == set(titles) and rows != titles:
        problems.append(f"cell [{h}] (header): the lab plan rows are not in the order of the "
                        "headings")
    where = dict((t, i) for i, t in found)
    for row in plan.sections:
        if row.part == "optional" and row.section in where and "optional" not in (
                _first_paragraph_after(cells, where[row.section], row.section).lower()):
            problems.append(f"cell [{where[row.section]}]: section '{row.section}' is optional "
                            "in the lab plan: say so in its heading or its first line")
    core = [r for r in [*plan.sections, plan.exercise] if r is not None and r.part == "core"]
    if all(r.reading_min is not None and r.running_s is not None for r in core):
        reading = sum(r.reading_min for r in core)
        running = sum(r.running_s for r in core)
        lab = reading + running / 60
        if lab > LAB_MINUTES:
            problems.append(f"cell [{h}] (header): core reading {reading:g} min + core running "
                            f"{running / 60:.1f} min (exercise included) = {lab:.1f} min does "
                            f"not fit a {LAB_MINUTES}-minute lab: mark sections 'optional' "
                            "(and say so in their first line) or shorten them")
        total = plan.total
        if total is not None and total.reading_min is not None and total.running_s is not None:
            if total.reading_min != reading:
                problems.append(f"cell [{h}] (header): 'Total (core)' reading is "
                                f"{total.reading_min:g} min but the core rows add up to "
                                f"{reading:g} min")
            if abs(total.running_s - running) >= _running_unit(total.running_text) + 1e-9:
                problems.append(f"cell [{h}] (header): 'Total (core)' running is "
                                f"'{total.running_text}' but the core rows add up to "
                                f"{running:g} s")
    return plan, problems


# ---------------------------------------------------------------------------- check 2: wall time
def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def cell_span(cell: dict) -> tuple[datetime, datetime] | None:
    """When a code cell started and ended (``iopub.execute_input`` → ``shell.execute_reply``,
    else ``iopub.status.idle``), from nbclient's timing metadata; ``None`` if it was not
    recorded."""
    meta = cell.get("metadata", {}).get("execution", {})
    end = meta.get("shell.execute_reply") or meta.get("iopub.status.idle")
    if "iopub.execute_input" not in meta or end is None:
        return None
    return _time(meta["iopub.execute_input"]), _time(end)


def wall_time_problems(cells: list[dict], plan: LabPlan | None) -> list[str]:
    """Check 2: each section's recorded running time (its code cells' spans added up) is at most
    2 × its Running in the lab plan + 15 s, and the whole notebook's (first cell's start to the
    last cell's end) at most 2 × the sum of all section rows (core and optional) + 15 s."""
    ran = [(i, c) for i, c in enumerate(cells) if c["cell_type"] == "code" and c["source"].strip()]
    untimed = [i for i, c in ran if cell_span(c) is None]
    if untimed:
        return [f"cells {untimed[:5]}{' …' if len(untimed) > 5 else ''} have no timing metadata "
                "(metadata.execution): re-execute the notebook with `python -m sslkit.course` "
                "(nbclient records it) and commit the executed copy"]
    if plan is None:
        return ["no lab plan table to compare the recorded running times with (see the lab "
                "plan check)"]
    if not ran:
        return []
    starts = {i: cell_span(cells[i]) for i, _ in ran}
    recorded: dict[str, float] = {}
    section, first = None, {}
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "markdown":
            for line in _without_fences(cell["source"]):
                if line.startswith("## "):
                    section = line[3:].strip()
                    first.setdefault(section, i)
        elif i in starts and section is not None:
            start, end = starts[i]
            recorded[section] = recorded.get(section, 0.0) + (end - start).total_seconds()
    problems = []
    for row in plan.sections:
        took = recorded.get(row.section, 0.0)
        if row.running_s is not None and took > 2 * row.running_s + 15:
            problems.append(f"cell [{first.get(row.section, '?')}]: section '{row.section}' "
                            f"took {took:.0f} s in the committed run but the lab plan says "
                            f"'{row.running_text}' (at most 2× + 15 s): re-execute on a quiet "
                            "machine, or correct the lab plan")
    stated = sum(r.running_s for r in plan.sections if r.running_s is not None)
    spans = list(starts.values())
    whole = (max(e for _, e in spans) - min(s for s, _ in spans)).total_seconds()
    if whole > 2 * stated + 15:
        problems.append(f"the committed run took {whole:.0f} s from the first cell to the last "
                        f"but the lab plan's sections add up to {stated:.0f} s (at most 2× + "
                        "15 s): re-execute on a quiet machine, or correct the lab plan")
    return problems


# ---------------------------------------------------------------------------- check 3: instructors
def _bullets(text: str) -> list[tuple[str, str]]:
    """The bullets of a blockquote: ``(bold label, the bullet's whole text)``."""
    found: list[tuple[str, str]] = []
    for line in text.splitlines():
        body = re.sub(r"^\s*>\s?", "", line)
        m = re.match(r"\s*[-*]\s+\*\*(.+?)\*\*", body)
        if m:
            label = re.sub(r"\s*/\s*", " / ", m[1]).strip().rstrip(".:").strip()
            found.append((label, body))
        elif found:
            found[-1] = (found[-1][0], found[-1][1] + "\n" + body)
    return found


def instructor_box_problems(cells: list[dict], plan: LabPlan | None) -> list[str]:
    """Check 3: the cell right after the header is the instructor box: a markdown cell starting
    with ``> **For instructors.**`` and four bullets in order (**Before the lab**, with ``make
    run`` and the CPU wheels' index; **Live-code**; **Optional / homework**, naming each optional
    section's number; **Where learners get stuck**). Also at least one ``> **Predict first.**``
    cell, followed by a code cell before the next heading."""
    h = header_index(cells)
    problems = []
    box = cells[h + 1] if h is not None and h + 1 < len(cells) else None
    if box is None or box["cell_type"] != "markdown" or not box["source"].startswith(
            INSTRUCTOR_BOX):
        problems.append(f"cell [{(h or 0) + 1}]: the cell right after the header must be a "
                        f"markdown cell starting with '{INSTRUCTOR_BOX}' (four bullets: "
                        + ", ".join(f"**{b}**" for b in INSTRUCTOR_BULLETS) + ")")
    else:
        at = f"cell [{h + 1}] (instructor box)"
        bullets = _bullets(box["source"])
        labels = [label for label, _ in bullets]
        if labels != list(INSTRUCTOR_BULLETS):
            problems.append(f"{at}: its bullets are {labels}, expected "
                            f"{list(INSTRUCTOR_BULLETS)} in this order ('> - **Before the "
                            "lab**: …')")
        text = dict(bullets)
        before = text.get("Before the lab", "")
        if before and ("make run" not in before or CPU_WHEELS not in before):
            problems.append(f"{at}: **Before the lab** must say to run `make run` once and give "
                            "the CPU-wheel install line (`pip install torch torchvision "
                            "--index-url https://download.pytorch.org/whl/cpu`)")
        optional = text.get("Optional / homework")
        if optional is not None and plan is not None:
            for row in plan.sections:
                m = _NUMBERED.match(row.section)
                if row.part == "optional" and m and not re.search(
                        rf"(?<![\d.]){m[1]}(?![\d])", optional):
                    problems.append(f"{at}: **Optional / homework** does not name section "
                                    f"{m[1]}, which the lab plan marks optional")
        for label, body in bullets:
            if not re.sub(r"^\s*[-*]\s+\*\*.+?\*\*[.:]?", "", body, count=1).strip():
                problems.append(f"{at}: the **{label}** bullet is empty")
    prompts = [i for i, c in enumerate(cells)
               if c["cell_type"] == "markdown" and c["source"].startswith(PREDICT_FIRST)]
    if not prompts:
        problems.append(f"no '{PREDICT_FIRST}' cell: add one or two before an experiment, "
                        "answered by its output and explained right after")
    for i in prompts:
        after = cells[i + 1:]
        nxt = next((k for k, c in enumerate(after) if c["cell_type"] == "code"
                    or "\n## " in "\n" + c["source"]), None)
        if nxt is None or after[nxt]["cell_type"] != "code":
            problems.append(f"cell [{i}]: a '{PREDICT_FIRST}' prompt must come before the "
                            "experiment (a code cell) that answers it, in the same section")
    return problems


# ---------------------------------------------------------------------------- check 4: process
# Wording that refers to how the course is made (its issue tracker, work sessions, CI, the
# review), which a learner cannot open. Each pattern is narrow enough that ordinary English
# ("the issue is", "a smaller lead", "review the loss") does not trip it.
INTERNAL = {
    "an issue number": r"\bissues?\s*#?\d+",
    "the course's issues": r"\bcourse's\s+issues?\b|\bissue\s+tracker\b|\bgithub\s+issues?\b",
    "a closing note": r"\bclosing\s+notes?\b",
    "an internal note": r"\binternal\s+notes?\b|\b(?:issue|session|review)\s+notes?\b",
    "a work session": r"\b(?:this|previous|earlier|last|next|helper|lead|work|working|tuning)\s+"
                      r"sessions?\b(?!\s+(?:of|in)\s+(?:the\s+)?lab)",
    "CI": r"(?-i:\b(?:in|on|by|for|the|our)\s+CI\b|\bCI(?:'s|\s+(?:runs?|jobs?|checks?|"
          r"pipelines?|machines?|budget))\b)",
    "the review": r"\b(?:the|a|this|our|course's)\s+review\b(?!\s+(?:of|paper|article)\b)"
                  r"|\breview\s+of\s+(?:the\s+)?(?:lectures?|notebooks?|course)\b|\breviewers?\b"
                  r"|\breview\s+(?:items?|findings?|comments?)\b|\bP[123]-\d+\b",
    "a helper or the lead": r"\blecture\s+helpers?\b|\bthe\s+lead\s+(?:re-?executes|commits|"
                            r"corrects|measures)\b",
}


def internal_reference_problems(cells: list[dict]) -> list[str]:
    """Check 4: no markdown cell refers to the course's internal process (:data:`INTERNAL`)."""
    problems = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        for what, pattern in INTERNAL.items():
            for m in re.finditer(pattern, cell["source"], re.IGNORECASE):
                problems.append(f"cell [{i}]: '{m[0]}' refers to {what}, which a learner cannot "
                                "open: say what it established in a sentence, or cite a file of "
                                "the repository (e.g. benchmarks/…)")
    return problems


# ---------------------------------------------------------------------------- check 5: presets
PRESETS = ("easy", "standard", "hard")
_NAMED_PRESET = re.compile(
    r"(?:\*{0,2}`(?P<a>easy|standard|hard)`\*{0,2}\s+preset\b(?!s))"
    r"|(?:\bpreset\s+\*{0,2}`(?P<b>easy|standard|hard)`)", re.IGNORECASE)
_OTHER_PROFILE = re.compile(r"\bfull\b|\bGPU\b", re.IGNORECASE)


def preset_problems(cells: list[dict], quick_preset: str) -> list[str]:
    """Check 5: a markdown sentence that names a preset ("the `easy` preset", "preset `hard`")
    names ``quick_preset``, the one the lecture runs in the quick profile, unless the sentence
    is about the other profile (it says "full" or "GPU")."""
    problems = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        for sentence in sentences(cell["source"]):
            for m in _NAMED_PRESET.finditer(sentence):
                named = (m["a"] or m["b"]).lower()
                if named != quick_preset and not _OTHER_PROFILE.search(sentence):
                    problems.append(f"cell [{i}]: '{m[0]}' but this lecture runs the "
                                    f"`{quick_preset}` preset in the quick profile "
                                    "(sslkit.profiles): name the preset it runs, or say the "
                                    "sentence is about the full profile")
    return problems


# ---------------------------------------------------------------------------- check 6: numbers
SHOULD_SEE = re.compile(r"you should see", re.IGNORECASE)
_PROSE_NUMBER = re.compile(
    r"(?<![\w.,])(?P<num>\d+(?:\.\d+)?)(?![\w.]\d)"
    r"(?P<pct>\s*(?:%|percent\b|(?:percentage\s+)?points?\b"
    r"(?!\s+(?:in|from|of|per|on|each|drawn|sampled)\b)))?")
_PRINTED_NUMBER = re.compile(r"(?<![\w.])-?(?P<num>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
                             r"(?P<pct>\s*(?:%|points?\b))?")
_SETTING = re.compile(r"(?:[^\W\d]\w*|τ)`?\s*=\s*`?$")
_ARXIV = re.compile(r"arxiv[:\s]*$", re.IGNORECASE)
_COMPARISON = re.compile(r"\b(?:above|below|over|under|more than|less than|at least|at most|"
                         r"beyond|exceed\w*|bar|margin|by)\b|[<>≥≤]", re.IGNORECASE)
_APPROXIMATE = re.compile(r"\b(?:around|about|roughly|near|nearly|approximately|close to)\s*$"
                          r"|[≈~]\s*$", re.IGNORECASE)


@dataclass
class Quoted:
    """A number a sentence quotes: ``value`` as written, ``decimals`` written after the point,
    ``percent`` if followed by %, "percent" or "points"."""
    text: str
    value: float
    decimals: int
    percent: bool
    start: int
    end: int


def quoted_numbers(sentence: str) -> list[Quoted]:
    """The numbers of ``sentence`` that a "You should see" check holds to the outputs: every
    decimal number and every percentage ("%", "percent", "N points" up to 100 and not "points
    in/of/from…", which are data points). Integers ("10 labels", "500 steps"), settings written
    ``name = value`` ("τ = 0.05", "`T = 0.1`") and arXiv ids are not results and are skipped."""
    found = []
    for m in _PROSE_NUMBER.finditer(sentence):
        num, pct = m["num"], bool(m["pct"])
        if pct and "%" not in m["pct"] and float(num) > 100:
            pct = False                              # "1500 points": data points, not a margin
        if "." not in num and not pct:
            continue
        before = sentence[:m.start()]
        if _SETTING.search(before) or _ARXIV.search(before):
            continue
        found.append(Quoted(m[0].strip(), float(num), len(num.partition(".")[2]), pct,
                            m.start(), m.end()))
    return found


def printed_numbers(text: str) -> list[tuple[float, bool]]:
    """The numbers in printed output: ``(value, is a percentage)`` (followed by % or
    "points")."""
    return [(float(m["num"]), bool(m["pct"])) for m in _PRINTED_NUMBER.finditer(text)]


def printed_text(cell: dict) -> str:
    """What a code cell showed as text: its streams, and the ``text/plain`` and the text of the
    ``text/html`` (a table, a panel's static fallback) of its results; not figures."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(_joined(out.get("text", "")))
            continue
        data = out.get("data", {})
        if any(k.startswith("image/") for k in data):
            continue
        parts.append(_joined(data.get("text/plain", "")))
        parts.append(re.sub(r"<[^>]*>", " ", _joined(data.get("text/html", ""))))
    return "\n".join(parts)


def _joined(text: str | list[str]) -> str:
    return "".join(text) if isinstance(text, list) else text


def _in_unit(value: float, pct: bool, percent: bool) -> float | None:
    """A printed number in the unit of a quoted one: a percentage (``percent``) or not."""
    if percent:
        return value if pct else 100 * value if value <= 1 else None
    return value / 100 if pct else value


def matches_printed(q: Quoted, printed: list[tuple[float, bool]]) -> bool:
    """``q`` is a printed number as printed or rounded further (0.659 → "0.66"), or a printed
    fraction as a percentage (0.659 → "65.9 %", "66 %"), or a printed percentage as a fraction.
    A percentage in prose never matches a bare printed integer ("15 points" is not "15 s")."""
    tol = 0.5 * 10.0 ** -q.decimals + 1e-9
    values = (_in_unit(value, pct, q.percent) for value, pct in printed)
    return any(v is not None and abs(v - q.value) <= tol for v in values)


def range_matches_printed(low: Quoted, high: Quoted, printed: list[tuple[float, bool]]) -> bool:
    """A range "0.3–0.4" holds a printed number (0.37)."""
    tol = 0.5 * 10.0 ** -min(low.decimals, high.decimals) + 1e-9
    values = (_in_unit(value, pct, low.percent) for value, pct in printed)
    return any(v is not None and low.value - tol <= v <= high.value + tol for v in values)


def matches_bar(q: Quoted, sentence: str, bars: dict[str, float]) -> str | None:
    """The name of the bar ``q`` quotes, if it is one and the sentence reads it as a bar: a
    comparison just before it ("above", "more than", "by", …) or the word "bar" just after,
    and no "about"/"around"/"≈" right before (a bar is not a result)."""
    value = q.value / 100 if q.percent else q.value
    tol = (0.5 * 10.0 ** -q.decimals) / (100 if q.percent else 1) + 1e-9
    before, after = sentence[max(0, q.start - 30):q.start], sentence[q.end:q.end + 12]
    if _APPROXIMATE.search(before):
        return None
    if not (_COMPARISON.search(before) or re.match(r"\s*bar\b", after)):
        return None
    return next((name for name, bar in bars.items() if abs(bar - value) <= tol), None)


def assert_literals(cells: list[dict]) -> list[tuple[float, bool]]:
    """The numbers written in the assert lines (``assert …``, ``assert_close(…, atol=0.01)``)
    of ``cells``: the bars a "You should see" sentence may quote."""
    lines = [line for c in cells for line in c["source"].splitlines() if "assert" in line]
    return [(v, False) for v, _ in printed_numbers("\n".join(lines))]


_DERIVED = re.compile(r"(?:\b(?:log|ln|exp|sqrt)\b|√|\d\s*/\s*\d|[⁰¹²³⁴⁵⁶⁷⁸⁹])[^,;:]{0,24}?"
                      r"[≈=]\s*`?$")
_CHANCE = re.compile(r"\bchance\b[^.;]{0,12}$", re.IGNORECASE)


def is_derived(q: Quoted, sentence: str) -> bool:
    """``q`` is the value of a formula the sentence writes out (``log 4 ≈ 1.386``,
    ``1/24 ≈ 0.04``, ``√(30/333) ≈ 0.3``, ``e² ≈ 7.4``), or a chance level 1/k named as chance
    ("chance (10 %)", "near chance, 0.25")."""
    before = sentence[max(0, q.start - 40):q.start]
    if _DERIVED.search(before):
        return True
    value = q.value / 100 if q.percent else q.value
    tol = (0.5 * 10.0 ** -q.decimals) / (100 if q.percent else 1) + 1e-9
    return bool(_CHANCE.search(before)) and 0 < value <= 0.5 and abs(
        1 / round(1 / value) - value) <= tol


def _opens_section(cell: dict) -> bool:
    return cell["cell_type"] == "markdown" and any(
        line.startswith("## ") for line in _without_fences(cell["source"]))


def section_bounds(cells: list[dict], i: int) -> tuple[int, int]:
    """The cells ``[start, end)`` of the ``## `` section that cell ``i`` is in (the part before
    the first heading counts as a section)."""
    start = next((k for k in range(i, -1, -1) if _opens_section(cells[k])), 0)
    end = next((k for k in range(i + 1, len(cells)) if _opens_section(cells[k])), len(cells))
    return start, end


def should_see_problems(cells: list[dict], bars: dict[str, float]) -> list[str]:
    """Check 6: every decimal number or percentage of a "You should see" sentence is
    - printed in the sentence's ``## `` section, before or after it (as printed, rounded
      further, or as a percentage of a printed fraction; a range must hold a printed number), or
      printed with the same value by an earlier section (the 0.65 ceiling computed in section
      2, quoted in section 3; a rounded or converted match there would be a coincidence), or
    - a bar quoted as a bar (a comparison before it, no "about"): one of the lecture's ``bars``
      (``sslkit.sizes``'s ``bar_*`` values) or a number in an assert line of the code cells
      after the sentence in its section, or
    - the value of a formula written out in the sentence, or a chance level named as chance.
    Settings written ``name = value`` are not checked (:func:`quoted_numbers`)."""
    problems = []
    bar_list = ", ".join(f"{k}={v:g}" for k, v in bars.items()) or "none"
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "markdown" or not SHOULD_SEE.search(cell["source"]):
            continue
        start, end = section_bounds(cells, i)
        after = [c for c in cells[i + 1:end] if c["cell_type"] == "code"]
        printed = printed_numbers("\n".join(
            printed_text(c) for c in cells[start:end] if c["cell_type"] == "code"))
        before = printed_numbers("\n".join(
            printed_text(c) for c in cells[:start] if c["cell_type"] == "code"))
        asserted = {f"assert {k}": v for k, (v, _) in enumerate(assert_literals(after))}
        for sentence in sentences(cell["source"]):
            if not SHOULD_SEE.search(sentence):
                continue
            quoted = quoted_numbers(sentence)
            in_range = set()
            for low, high in zip(quoted, quoted[1:], strict=False):
                if (re.fullmatch(r"\s*[–-]\s*", sentence[low.end:high.start])
                        and low.percent == high.percent
                        and range_matches_printed(low, high, printed)):
                    in_range |= {low.start, high.start}
            for q in quoted:
                if (q.start in in_range or matches_printed(q, printed)
                        or any(v == q.value and pct == q.percent for v, pct in before)
                        or is_derived(q, sentence)
                        or matches_bar(q, sentence, bars) or matches_bar(q, sentence, asserted)):
                    continue
                problems.append(
                    f"cell [{i}]: \"You should see\" quotes {' '.join(q.text.split())!r}, "
                    "which the lecture does not print in this section (nor exactly in an earlier "
                    "one), which no assert below it in the section checks, and which is no bar "
                    f"of this lecture ({bar_list}): quote the printed number, or the bar as a bar "
                    "('above the 50 % bar', not 'around 50 %'), or say it in words")
    return problems


def bars_of(stem: str) -> dict[str, float]:
    """The bars of lecture ``stem`` in the quick profile: its ``bar_*`` sizes."""
    import sslkit

    return {k: float(v) for k, v in vars(sslkit.sizes(stem, "quick")).items()
            if k.startswith("bar") and isinstance(v, (int, float))}
