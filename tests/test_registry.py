"""The one plugin registry: names, entry-point overrides, lazy loading, and the line
between a missing optional dependency (a user error with an install hint) and a bug in a
plugin (its own exception and traceback)."""

from __future__ import annotations

import sys
import textwrap
import tomllib
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

from bildwerk import registry
from bildwerk.checks.registry import check_names, get_check
from bildwerk.errors import MissingExtraError, UserError
from bildwerk.executors.base import FifoQueue, Task, TaskDone
from bildwerk.registry import Registry

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _fresh_registries() -> Iterator[None]:
    """Each test sees the entry points on its own sys.path; nothing leaks to others."""
    registry.reset_all()
    yield
    registry.reset_all()
    for name in [m for m in sys.modules if m.startswith("acme_")]:
        del sys.modules[name]


def install_plugin(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    dist: str,
    entry_points: str,
    modules: dict[str, str],
) -> None:
    """A distribution as pip would leave it: a dist-info folder with entry_points.txt
    and the plugin's modules, on sys.path."""
    site = tmp_path / "site"
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    for name, source in modules.items():
        (site / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(site))
    registry.reset_all()


# --------------------------------------------------------------------------- names


def test_every_kind_has_its_builtins() -> None:
    assert registry.backends.names()[:4] == ["studio", "diffusers", "openai", "stability"]
    assert check_names()[:3] == ["nsfw", "people", "legibility"]
    assert registry.targets.names() == ["folder", "s3", "webhook"]
    assert registry.executors.names() == ["inline", "process"]
    assert registry.blob_stores.names() == ["local", "object"]
    assert registry.executors.target("process") == "bildwerk.executors.local:ProcessExecutor"
    assert registry.blob_stores.target("object") == "bildwerk.blobs.objectstore:ObjectBlobStore"


def test_pyproject_declares_every_builtin_as_an_entry_point() -> None:
    """Built-ins are registered exactly like plugins: the defaults and the installed
    metadata never disagree."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["entry-points"]
    for reg in registry.REGISTRIES:
        assert declared[reg.group] == reg.defaults, reg.group


@pytest.mark.parametrize(
    ("reg", "name"),
    [
        (registry.backends, "dalle9"),
        (registry.checks, "vibes"),
        (registry.targets, "ftp"),
        (registry.executors, "ray"),
        (registry.blob_stores, "tape"),
    ],
)
def test_unknown_name_lists_the_valid_ones(reg: Registry[object], name: str) -> None:
    with pytest.raises(UserError) as info:
        reg.get(name)
    assert f"unknown {reg.kind} '{name}'" in info.value.message
    assert info.value.hint == f"use one of: {', '.join(reg.names())}"
    assert name not in reg


def test_old_backend_functions_are_the_registry() -> None:
    assert registry.backend_names() == sorted(registry.backends.names())
    assert registry.backend_target("studio") == "bildwerk.backends.studio:StudioBackend"
    studio = registry.get_backend("studio")
    assert studio is registry.get_backend("studio")  # one per process: models stay warm
    assert type(studio).__name__ == "StudioBackend"


def test_checks_are_cached_and_other_kinds_are_not() -> None:
    assert get_check("contrast") is get_check("contrast")
    assert registry.executors.get("inline") is not registry.executors.get("inline")


def test_nothing_is_imported_until_first_load() -> None:
    reg: Registry[object] = Registry("thing", "acme.none", {"x": "acme_lazy_never:Thing"})
    assert reg.names() == ["x"]
    assert reg.target("x") == "acme_lazy_never:Thing"
    assert "acme_lazy_never" not in sys.modules


# --------------------------------------------------------------------------- entry points


def test_entry_point_adds_a_name_and_overrides_a_builtin(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    install_plugin(
        monkeypatch,
        tmp_path,
        "acme_checks",
        """
        [bildwerk.checks]
        contrast = acme_checks_mod:LoudContrast
        sparkle = acme_checks_mod:Sparkle
        """,
        {
            "acme_checks_mod": """
            class LoudContrast:
                name = "contrast"

            class Sparkle:
                name = "sparkle"
            """
        },
    )
    names = check_names()
    assert names[: len(registry.checks.defaults)] == list(registry.checks.defaults)
    assert names[-1] == "sparkle"
    assert registry.checks.target("contrast") == "acme_checks_mod:LoudContrast"
    assert type(get_check("contrast")).__name__ == "LoudContrast"
    assert type(get_check("sparkle")).__name__ == "Sparkle"
    assert registry.checks.target("nsfw") == "bildwerk.checks.nsfw:NSFWCheck"  # untouched


def test_two_packages_claiming_one_name_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for dist in ("acme_one", "acme_two"):
        install_plugin(
            monkeypatch,
            tmp_path / dist,
            dist,
            f"[bildwerk.executors]\nray = {dist}_mod:Ray\n",
            {f"{dist}_mod": "class Ray: ...\n"},
        )
    with pytest.raises(UserError, match="declared by several installed packages") as info:
        registry.executors.load("ray")
    assert "acme_one" in info.value.message and "acme_two" in info.value.message


def test_executor_and_target_classes_are_created_with_arguments(tmp_path: Path) -> None:
    pool = registry.executors.create("inline", 1)
    queue = FifoQueue([Task("t", "sum", sum, ([1, 2],))])
    assert [e.result for e in pool.run(queue) if isinstance(e, TaskDone)] == [3]
    folder = registry.targets.create("folder", tmp_path / "out", "https://cdn.example.com")
    assert folder.put("a.txt", b"x", content_type="text/plain", cache_control="no-cache")


# --------------------------------------------------------------------------- missing vs bug


def test_missing_third_party_dependency_is_a_missing_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    install_plugin(
        monkeypatch,
        tmp_path,
        "acme_gpu",
        "[bildwerk.backends]\nacme = acme_gpu_mod:Backend\n",
        {"acme_gpu_mod": "import acme_not_installed_anywhere\nclass Backend: ...\n"},
    )
    with pytest.raises(MissingExtraError) as info:
        registry.get_backend("acme")
    assert info.value.package == "acme_not_installed_anywhere"
    assert "generation backend 'acme'" in info.value.message
    assert info.value.hint == "install it with: pip install acme_not_installed_anywhere"


def test_builtin_missing_its_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """A built-in whose optional dependency is absent: the hint names bildwerk's extra
    and the pip package (not the import name)."""
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 -> ModuleNotFoundError
    with pytest.raises(MissingExtraError) as info, registry.checks.loading("people"):
        import cv2  # noqa: F401
    assert info.value.package == "opencv-python-headless"
    assert info.value.extra == "qa"
    assert info.value.hint == "install it with: pip install 'bildwerk[qa]'"
    assert "QA check 'people'" in info.value.message


def test_missing_module_of_bildwerk_itself_is_a_bug() -> None:
    assert registry.missing_dependency(ModuleNotFoundError(name="s3fs"), "bildwerk.x") == "s3fs"
    assert registry.missing_dependency(ModuleNotFoundError(name="bildwerk.y"), "acme") is None
    assert registry.missing_dependency(ModuleNotFoundError(name="acme.y"), "acme.x") is None
    assert registry.missing_dependency(ModuleNotFoundError(name="sqlite3"), "acme") is None
    assert registry.missing_dependency(ImportError(name="torch"), "acme") is None


def test_constructor_raising_missing_dependency_is_a_missing_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    install_plugin(
        monkeypatch,
        tmp_path,
        "acme_lazy",
        "[bildwerk.checks]\nlazy = acme_lazy_mod:Lazy\n",
        {
            "acme_lazy_mod": """
            class Lazy:
                def __init__(self):
                    import acme_model_runtime_absent
            """
        },
    )
    with pytest.raises(MissingExtraError, match="acme_model_runtime_absent"):
        get_check("lazy")


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("import acme_bug_mod.helper_typo\n", ModuleNotFoundError),  # own package: a bug
        ("import bildwerk.no_such_module\n", ModuleNotFoundError),  # bildwerk's: a bug
        ("from json import no_such_name\n", ImportError),  # stdlib, wrong name: a bug
        ("1 / 0\n", ZeroDivisionError),
    ],
)
def test_bug_in_a_plugin_module_keeps_its_exception_and_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, source: str, error: type[Exception]
) -> None:
    install_plugin(
        monkeypatch,
        tmp_path,
        "acme_bug",
        "[bildwerk.backends]\nbuggy = acme_bug_mod.sub:Backend\n",
        {"acme_bug_mod": ""},
    )
    pkg = tmp_path / "site" / "acme_bug_mod"
    (tmp_path / "site" / "acme_bug_mod.py").unlink()
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "sub.py").write_text(source + "class Backend: ...\n")
    with pytest.raises(error) as info:
        registry.get_backend("buggy")
    assert not isinstance(info.value, UserError)
    assert "generation backend 'buggy'" in " ".join(info.value.__notes__)
    frames = traceback.extract_tb(info.value.__traceback__)
    assert any(f.filename.endswith("sub.py") for f in frames)  # the plugin's own line


def test_bug_in_a_constructor_is_not_a_user_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    install_plugin(
        monkeypatch,
        tmp_path,
        "acme_ctor",
        "[bildwerk.backends]\nctor = acme_ctor_mod:Backend\n",
        {
            "acme_ctor_mod": """
            class Backend:
                def __init__(self):
                    raise KeyError("weights")
            """
        },
    )
    with pytest.raises(KeyError, match="weights") as info:
        registry.get_backend("ctor")
    frames = traceback.extract_tb(info.value.__traceback__)
    assert frames[-1].filename.endswith("acme_ctor_mod.py")
    assert "ctor" not in registry.backends._instances  # a failed build is not cached


def test_bad_target_string_is_a_user_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    install_plugin(
        monkeypatch,
        tmp_path,
        "acme_bad",
        "[bildwerk.blob_stores]\ntape = acme_bad_mod\n",
        {"acme_bad_mod": ""},
    )
    with pytest.raises(UserError, match="not 'module:attribute'"):
        registry.blob_stores.load("tape")


# --------------------------------------------------------------------------- brief errors


def _read(brief: Path) -> object:
    from bildwerk.inputs import read_inputs

    return read_inputs(
        brief, default_brand=brief.parents[1] / "brand" / "brand.yaml", max_megapixels=64
    )


def test_unknown_backend_in_a_brief_points_at_its_line(small_brief: Path) -> None:
    from bildwerk.errors import ConfigError

    small_brief.write_text(small_brief.read_text().replace("backend: studio", "backend: nope"))
    with pytest.raises(ConfigError) as info:
        _read(small_brief)
    assert info.value.field == "backend" and info.value.line == 2
    assert "unknown generation backend 'nope'" in info.value.message
    assert info.value.hint and "studio" in info.value.hint  # the valid names survive


def test_backend_missing_its_extra_is_a_brief_error_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, small_brief: Path
) -> None:
    from bildwerk.errors import ConfigError

    install_plugin(
        monkeypatch,
        tmp_path,
        "acme_needy",
        "[bildwerk.backends]\nneedy = acme_needy_mod:Backend\n",
        {"acme_needy_mod": "import acme_gpu_runtime_absent\nclass Backend: ...\n"},
    )
    small_brief.write_text(small_brief.read_text().replace("backend: studio", "backend: needy"))
    with pytest.raises(ConfigError) as info:
        _read(small_brief)
    assert info.value.field == "backend"
    assert info.value.hint == "install it with: pip install acme_gpu_runtime_absent"


def test_backend_bug_is_not_a_brief_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, small_brief: Path
) -> None:
    install_plugin(
        monkeypatch,
        tmp_path,
        "acme_broken",
        "[bildwerk.backends]\nbroken = acme_broken_mod:Backend\n",
        {
            "acme_broken_mod": """
            class Backend:
                def __init__(self):
                    self.size = {}["width"]
            """
        },
    )
    small_brief.write_text(small_brief.read_text().replace("backend: studio", "backend: broken"))
    with pytest.raises(KeyError) as info:
        _read(small_brief)
    frames = traceback.extract_tb(info.value.__traceback__)
    assert frames[-1].filename.endswith("acme_broken_mod.py")
