"""Dependency bounds of mxcore's four distributions.

Every runtime dependency declares a lower bound; constraints/minimum.txt pins each one
to exactly that bound (CI installs with it and runs tests, so every lower bound is one
that has been tested); and the versions installed here satisfy what is declared.
Distributions of this repository depend on each other unversioned: they are released
together.
"""
from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PYPROJECTS = [ROOT / p for p in ("pyproject.toml", "hal/pyproject.toml",
                                 "plugins/cpu/pyproject.toml", "plugins/cuda/pyproject.toml",
                                 "plugins/arm/pyproject.toml", "contrib_ops/pyproject.toml")]
MINIMUM = ROOT / "constraints" / "minimum.txt"
LOWER = (">=", "~=", "==")


def _project(path: Path) -> dict:
    with open(path, "rb") as f:
        return tomllib.load(f)["project"]


OURS = {canonicalize_name(_project(p)["name"]) for p in PYPROJECTS}


def _requirements(optional: bool) -> List[Tuple[str, Requirement]]:
    """(distribution, requirement) for every dependency on a distribution not of this
    repository: runtime ones, or those of the optional extras."""
    out = []
    for path in PYPROJECTS:
        project = _project(path)
        if optional:
            deps = [d for extra in project.get("optional-dependencies", {}).values()
                    for d in extra]
        else:
            deps = project.get("dependencies", [])
        for dep in deps:
            req = Requirement(dep)
            if canonicalize_name(req.name) not in OURS:
                out.append((project["name"], req))
    return out


RUNTIME = _requirements(optional=False)
OPTIONAL = _requirements(optional=True)


def _lower_bound(req: Requirement):
    bounds = [Version(s.version) for s in req.specifier if s.operator in LOWER]
    return max(bounds) if bounds else None


def _declared_lower_bounds() -> Dict[str, Version]:
    out: Dict[str, Version] = {}
    for _, req in RUNTIME:
        out[canonicalize_name(req.name)] = _lower_bound(req)
    return out


def _pins() -> Dict[str, Version]:
    pins: Dict[str, Version] = {}
    for line in MINIMUM.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", \
            f"constraints/minimum.txt: {line!r} is not a name==version pin"
        name = canonicalize_name(req.name)
        assert name not in pins, f"constraints/minimum.txt pins {req.name} twice"
        pins[name] = Version(specs[0].version)
    return pins


def test_pyprojects_found():
    assert OURS == {"mxcore", "mxcore-hal", "mxcore-cpu", "mxcore-cuda", "mxcore-arm",
                    "mxcore-contrib-ops"}
    assert RUNTIME and OPTIONAL


@pytest.mark.parametrize("dist,req", [pytest.param(d, r, id=f"{d}:{r.name}")
                                      for d, r in RUNTIME + OPTIONAL])
def test_every_dependency_has_a_lower_bound(dist, req):
    assert _lower_bound(req) is not None, f"{dist}: {req} declares no lower bound (>=)"


def test_a_dependency_has_one_lower_bound_everywhere():
    """Distributions installed together must not disagree on a dependency's floor."""
    seen: Dict[str, Tuple[str, Version]] = {}
    for dist, req in RUNTIME:
        name, low = canonicalize_name(req.name), _lower_bound(req)
        if name in seen:
            assert seen[name][1] == low, (f"{req.name}: {seen[name][0]} declares >={seen[name][1]}, "
                                          f"{dist} >={low}")
        seen.setdefault(name, (dist, low))


def test_minimum_constraints_pin_exactly_the_declared_lower_bounds():
    declared, pins = _declared_lower_bounds(), _pins()
    assert sorted(pins) == sorted(declared), (
        "constraints/minimum.txt must pin every runtime dependency and nothing else: "
        f"missing {sorted(set(declared) - set(pins))}, extra {sorted(set(pins) - set(declared))}")
    for name, low in declared.items():
        assert pins[name] == low, f"{name}: pinned to {pins[name]}, declared lower bound {low}"


def _installed(name: str):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@pytest.mark.parametrize("dist,req,runtime",
                         [pytest.param(d, r, True, id=f"{d}:{r.name}") for d, r in RUNTIME]
                         + [pytest.param(d, r, False, id=f"{d}:{r.name}") for d, r in OPTIONAL])
def test_installed_versions_satisfy_the_declared_specifiers(dist, req, runtime):
    if _installed(dist) is None:
        pytest.skip(f"{dist} is not installed")
    version = _installed(req.name)
    if version is None:
        assert not runtime, f"{dist} is installed but its dependency {req.name} is not"
        pytest.skip(f"optional {req.name} is not installed")
    assert req.specifier.contains(version, prereleases=True), \
        f"{dist} requires {req}, {version} is installed"


def test_requirements_list_the_core_before_what_depends_on_it():
    """requirements.txt installs the repository's distributions editable in one pip
    call; the pip a fresh Python 3.11 ships (23.2) resolves a dependency on `mxcore`
    from the editable `-e .[extras]` line only when that line comes first."""
    lines = [ln.strip() for ln in (ROOT / "requirements.txt").read_text().splitlines()
             if ln.strip().startswith("-e ")]
    paths = [ln[3:].split("[")[0].rstrip("/") for ln in lines]
    core = paths.index(".")
    for path in PYPROJECTS:
        folder = path.parent.relative_to(ROOT).as_posix()
        folder = "." if folder == "." else f"./{folder}"
        assert folder in paths, f"{folder} is not installed by requirements.txt"
        deps = {canonicalize_name(Requirement(d).name) for d in _project(path).get(
            "dependencies", [])}
        if "mxcore" in deps:
            assert paths.index(folder) > core, f"{folder} depends on mxcore: list it after -e ."
