"""The parameters contract between profiles, notebooks and config dataclasses (papermill only warns on
an unknown parameter, so this test is what makes one an error):

- every notebook has exactly one cell tagged ``parameters``, holding annotated literals with a help comment;
- its parameters are exactly ``profile``, ``force`` and the sections the step owns (config.STEP_SECTIONS);
- every key of every profile file is a parameter of the notebook it targets, and a field of the section's
  dataclass (every field documented);
- notebooks are committed without outputs, with the ``python3`` kernel.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap

import nbformat
import pytest

from gatoms.build import config, paths

PROFILES = sorted(p.stem for p in (paths.root() / "configs").glob("*.yaml"))


def notebook(step: str):
    path = paths.notebook(step)
    assert path.exists(), f"{path} is missing: every step in paths.STEPS needs its notebook"
    return nbformat.read(path, as_version=4)


def parameters_cell(step: str):
    cells = [c for c in notebook(step).cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"{step}: expected exactly one cell tagged 'parameters', found {len(cells)}"
    assert cells[0].cell_type == "code"
    return cells[0]


def parameters(step: str) -> dict[str, object]:
    """Name → literal value of every assignment in the step's parameters cell (asserting the shape)."""
    source = parameters_cell(step).source
    tree = ast.parse(source)
    out: dict[str, object] = {}
    for node in tree.body:
        assert isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None, (
            f"{step}: the parameters cell may hold only annotated assignments `name: type = literal`, "
            f"found {ast.unparse(node)!r}")
        try:
            value = ast.literal_eval(node.value)
        except ValueError:
            raise AssertionError(f"{step}: parameter {node.target.id} = {ast.unparse(node.value)} is not a literal "
                                 "(derived values belong in the setup cell)") from None
        assert node.target.id not in out, f"{step}: parameter {node.target.id} assigned twice"
        out[node.target.id] = value
    for line in source.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            assert "#" in line, f"{step}: parameter line without a help comment: {line!r}"
    return out


@pytest.mark.parametrize("step", paths.STEPS)
def test_one_parameters_cell_of_literals(step):
    params = parameters(step)
    assert isinstance(params.get("profile"), str)
    assert params.get("force") is False


@pytest.mark.parametrize("step", paths.STEPS)
def test_parameters_are_profile_force_and_the_steps_sections(step):
    params = parameters(step)
    assert set(params) == {*config.COMMON_PARAMETERS, *config.STEP_SECTIONS[step]}, (
        f"{step}: parameters {sorted(params)} must be exactly "
        f"{sorted({*config.COMMON_PARAMETERS, *config.STEP_SECTIONS[step]})}")
    for section in config.STEP_SECTIONS[step]:
        assert isinstance(params[section], dict), f"{step}: parameter {section} must be a dict of overrides"
        config.build_section(section, params[section], where=f"{step} parameters cell: ")


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_key_is_a_parameter_and_a_field(profile):
    raw = config.read_profile(profile)
    owner = {s: step for step, sections in config.STEP_SECTIONS.items() for s in sections}
    for section, values in raw.items():
        step = owner[section]
        assert section in parameters(step), f"{profile}: section {section} is not a parameter of {step}"
        fields = {f.name for f in dataclasses.fields(config.section_class(section))}
        unknown = sorted(set(values) - fields)
        assert not unknown, f"configs/{profile}.yaml: {section} keys {unknown} are not fields of its dataclass"
        # what the runner hands papermill: exactly the notebook's parameters, this profile's values
        handed = config.step_parameters(profile, step)
        assert set(handed) == set(parameters(step))
        assert handed[section] == values


@pytest.mark.parametrize("section", sorted(config.SECTIONS))
def test_section_dataclass_fields_are_documented(section):
    """STYLE: a docstring under every config field (the profile files point readers at these)."""
    cls = config.section_class(section)
    assert dataclasses.is_dataclass(cls)
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    documented = set()
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
                documented.add(node.target.id)
    missing = sorted({f.name for f in dataclasses.fields(cls)} - documented)
    assert not missing, f"{cls.__module__}.{cls.__name__}: fields without a docstring under them: {missing}"


@pytest.mark.parametrize("step", paths.STEPS)
def test_notebooks_are_stripped_of_outputs(step):
    nb = notebook(step)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, (
                f"{step}: commit notebooks without outputs (`.venv/bin/nbstripout notebooks/{step}.ipynb`)")
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    assert nb.cells[0].cell_type == "markdown", f"{step}: a notebook opens with its title and what it does"
