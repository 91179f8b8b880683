"""The package's shape: imports run one way through the pipeline's stages, files and functions stay small,
docstrings point only inside the repository, and every step module records its metrics as a dataclass."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "gatoms"

STAGES = ("build", "data", "world", "lm", "method", "report")
"""The subpackages in pipeline order: a module may import from its own stage or an earlier one only."""

DATA_TABLES = {"world/vocab.py"}
"""Files that are data, not logic (exempt from the length limit)."""

MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def gatoms_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every ``gatoms.…`` import in a file, at any depth (function-local ones too)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gatoms"):
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("gatoms")]
    return out


def stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def test_imports_run_one_way_through_the_stages():
    bad = []
    for path in modules():
        rel = path.relative_to(PACKAGE)
        mine = rel.parts[0] if rel.parts[0] in STAGES else None
        if mine is None:  # gatoms/__init__.py, gatoms/__main__.py: the command line may use anything
            continue
        for line, module in gatoms_imports(path):
            other = stage(module)
            if other is not None and STAGES.index(other) > STAGES.index(mine):
                bad.append(f"{rel}:{line} imports {module} (stage {other} comes after {mine})")
    assert not bad, "\n".join(bad)


def test_the_import_check_would_catch_a_backward_import(tmp_path):
    p = tmp_path / "x.py"
    p.write_text("def f():\n    from gatoms.report.markdown import render\n")
    assert [stage(m) for _, m in gatoms_imports(p)] == ["report"]


def test_world_is_used_only_where_documents_are_made_or_configured():
    users = {str(p.relative_to(PACKAGE)) for p in modules() for _, m in gatoms_imports(p)
             if stage(m) == "world" and not str(p.relative_to(PACKAGE)).startswith("world/")}
    assert users <= {"lm/sources.py"}, users


def test_files_and_functions_are_small():
    long_files, long_functions = [], []
    for path in modules():
        rel = str(path.relative_to(PACKAGE))
        text = path.read_text()
        if rel not in DATA_TABLES and len(text.splitlines()) > MAX_FILE_LINES:
            long_files.append(f"{rel}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long_functions.append(f"{rel}:{node.lineno} {node.name}: {n} lines")
    assert not long_files, long_files
    assert not long_functions, long_functions


def test_docstrings_point_inside_the_repository():
    """Users have the package, the notebooks and the paper, not the project's internal notes."""
    offenders = [str(p.relative_to(PACKAGE)) for p in modules() if "METHOD.md" in p.read_text()]
    assert not offenders, offenders


def test_every_step_records_a_metrics_dataclass():
    from gatoms.build import steps
    from gatoms.build.metrics import StepMetrics
    from gatoms.report.results import METRICS

    assert set(METRICS) == set(steps.NAMES)
    for name, cls in METRICS.items():
        assert issubclass(cls, StepMetrics) and cls.step == name
        m = cls()
        assert cls.from_json(m.to_json()) == m  # every field survives JSON
    with pytest.raises(ValueError, match="unknown metrics"):
        METRICS["03_atoms"].from_json({"n_atoms": 5, "n_atom": 5})
    assert all(dataclasses.fields(cls) for cls in METRICS.values())
