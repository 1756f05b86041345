"""What a submission's code does, read from its syntax tree before anything runs.

The grader (:mod:`sslkit.grade`) never trusts a learner's cells. Before they run, it reads them:

* :func:`definitions` keeps only what the graded tests need from a learner's cell: imports,
  ``def``/``class`` statements and assignments of literal constants. Any other top-level
  statement (a loop, a call, a patch) is dropped from the grading run;
* :func:`references` resolves every name and attribute chain of the learner's code, through the
  aliases its imports (and the notebook's given imports) create, to the library objects it
  names, so that a call of the function an answer mirrors is found however it is spelled;
* :func:`tampering` names the constructs an honest answer to these exercises never needs and a
  cheat does: assigning to an attribute of an imported module (``math.isclose = ...``),
  ``setattr``/``delattr`` on one, ``builtins``, IPython's input transformers or exception hook,
  interpreter frames and the garbage collector, ``ctypes``, dynamic code (``exec``, ``eval``,
  ``compile``, ``__import__``, ``importlib``) and raw file descriptors.

Each finding is a short text naming the cell and the line, for the feedback file.
"""

from __future__ import annotations

import ast
import sys
import threading

# attribute names whose use inspects or rewires the interpreter itself
_SUSPECT_ATTRIBUTES = {
    "_getframe": "reads interpreter frames", "f_back": "reads interpreter frames",
    "f_locals": "reads interpreter frames", "f_globals": "reads interpreter frames",
    "tb_frame": "reads interpreter frames", "gi_frame": "reads interpreter frames",
    "get_referrers": "searches the garbage collector", "get_objects":
    "searches the garbage collector", "input_transformers_post": "rewrites later cells",
    "input_transformers_cleanup": "rewrites later cells", "ast_transformers":
    "rewrites later cells", "set_custom_exc": "swallows exceptions", "settrace":
    "traces the interpreter", "setprofile": "traces the interpreter", "addaudithook":
    "hooks the interpreter", "__code__": "swaps a function's code", "excepthook":
    "swallows exceptions", "write": None, "dup2": "rewires file descriptors",
    "fdopen": "opens raw file descriptors",
}
_SUSPECT_NAMES = {
    "exec": "runs dynamic code", "eval": "runs dynamic code", "compile": "compiles dynamic code",
    "__import__": "imports dynamically", "__builtins__": "rewires builtins",
    "setattr": None, "delattr": None, "globals": "rewrites the notebook's namespace",
}
_SUSPECT_MODULES = {
    "ctypes": "calls C directly", "gc": "searches the garbage collector",
    "inspect": "reads interpreter frames", "importlib": "imports dynamically",
    "builtins": "rewires builtins", "subprocess": "starts processes", "pty": "starts processes",
    "multiprocessing": "starts processes",
}


def dotted(node) -> list[str] | None:
    """An expression as a dotted path: ``a.b.c`` → ``["a", "b", "c"]``, ``getattr(a, "b")`` →
    ``["a", "b"]``; anything else → ``None``."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return None if base is None else [*base, node.attr]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "getattr" and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
        base = dotted(node.args[0])
        return None if base is None else [*base, node.args[1].value]
    return None


# CPython 3.11 up to 3.11.7 keeps the AST builder's recursion depth in interpreter-wide state:
# two threads parsing at once (``sslkit.grade --jobs 2``) can fail with "SystemError: AST
# constructor recursion depth mismatch" (python/cpython#106905). One parse at a time.
_PARSING = threading.Lock()


def parse(source: str) -> ast.Module | None:
    """The syntax tree of a cell, or ``None`` if it is not valid Python."""
    try:
        with _PARSING:
            return ast.parse(source)
    except (SyntaxError, ValueError):
        return None


def aliases(tree: ast.Module, into: dict[str, str]) -> dict[str, str]:
    """Add the names ``tree``'s imports bind (anywhere in it) to ``into``: name → dotted path."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    into[a.asname] = a.name
                else:
                    into[a.name.split(".")[0]] = a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            for a in node.names:
                into[a.asname or a.name] = f"{node.module}.{a.name}"
    return into


def resolve(path: list[str]):
    """The object a dotted path names among the modules already loaded, or ``None``."""
    for cut in range(len(path), 0, -1):
        module = sys.modules.get(".".join(path[:cut]))
        if module is None:
            continue
        obj = module
        for part in path[cut:]:
            obj = getattr(obj, part, None)
            if obj is None:
                return None
        return obj
    return None


def references(tree: ast.Module, names: dict[str, str], targets: dict[int, str]
               ) -> list[tuple[int, str]]:
    """``(line, qualified name)`` of every place in ``tree`` that names one of ``targets``
    (``id(object)`` → qualified name), through the import aliases in ``names``."""
    found = []
    for node in ast.walk(tree):
        path = None
        if isinstance(node, (ast.Attribute, ast.Name, ast.Call)):
            path = dotted(node)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            for a in node.names:
                obj = resolve([*node.module.split("."), a.name])
                if obj is not None and id(obj) in targets:
                    found.append((node.lineno, targets[id(obj)]))
            continue
        if not path:
            continue
        head = names.get(path[0])
        if head is None:
            continue
        obj = resolve([*head.split("."), *path[1:]])
        if obj is not None and id(obj) in targets:
            found.append((node.lineno, targets[id(obj)]))
    return sorted(set(found))


def tampering(tree: ast.Module, names: dict[str, str]) -> list[tuple[int, str]]:
    """``(line, reason)`` for each construct in ``tree`` that patches or escapes the grader."""
    found = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, (ast.Assign, ast.Delete)):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for target in targets:
            path = dotted(target) if isinstance(target, ast.Attribute) else None
            if path and path[0] in names:
                found.append((node.lineno, f"assigns to {'.'.join(path)}, an attribute of an "
                                           "imported module"))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("setattr", "delattr") and node.args:
                path = dotted(node.args[0])
                if path and path[0] in names:
                    found.append((node.lineno, f"{node.func.id} on {'.'.join(path)}, an "
                                               "imported module"))
        if isinstance(node, ast.Attribute) and _SUSPECT_ATTRIBUTES.get(node.attr):
            found.append((node.lineno, f".{node.attr} {_SUSPECT_ATTRIBUTES[node.attr]}"))
        if (isinstance(node, ast.Attribute) and node.attr == "write"
                and dotted(node.value) == ["os"]):
            found.append((node.lineno, "os.write writes to raw file descriptors"))
        if isinstance(node, ast.Name) and _SUSPECT_NAMES.get(node.id):
            found.append((node.lineno, f"{node.id} {_SUSPECT_NAMES[node.id]}"))
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module or ""])
            for module in modules:
                root = module.split(".")[0]
                if root in _SUSPECT_MODULES:
                    found.append((node.lineno, f"imports {module}, which "
                                               f"{_SUSPECT_MODULES[root]}"))
    return sorted(set(found))


def _literal(node) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def definitions(source: str) -> tuple[str, int]:
    """The part of a learner's cell the graded tests run, and how many statements were dropped.

    Kept: imports, function and class definitions, and assignments of literal constants to
    plain names. A cell that is not valid Python keeps nothing (the tests then fail on a
    missing name, as they would in the notebook).
    """
    tree = parse(source)
    if tree is None:
        return "", 1
    kept, dropped = [], 0
    for node in tree.body:
        simple_target = (isinstance(node, ast.Assign)
                         and all(isinstance(t, ast.Name) for t in node.targets)
                         or isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name))
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef,
                             ast.ClassDef)) or (simple_target and node.value is not None
                                                and _literal(node.value)):
            kept.append(node)
        elif not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            dropped += 1  # a docstring-like constant is not worth a note
    return ast.unparse(ast.Module(body=kept, type_ignores=[])), dropped


def defined_names(source: str) -> set[str]:
    """The top-level names a cell binds with ``def``, ``class``, imports or assignments."""
    tree = parse(source)
    names: set[str] = set()
    for node in tree.body if tree else []:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names
