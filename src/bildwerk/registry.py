"""One plugin registry for every extension point: backends, checks, publish targets,
executors and blob stores.

Each kind maps a name to a ``"module:attr"`` target. Built-ins are a default table written
exactly like an entry point (and listed under the same entry-point group in
``pyproject.toml``); a third-party distribution adds names, or replaces a built-in, by
declaring the same group. Nothing is imported until a name is first loaded, so listing
names or printing ``--help`` stays cheap.

Loading separates two failures that look alike and mean opposite things:

* a **missing optional dependency** — a ``ModuleNotFoundError`` for a module outside the
  plugin's own package — becomes :class:`~bildwerk.errors.MissingExtraError` naming the
  package and the extra (or ``pip install`` line) that provides it: the user can fix it;
* anything else — a typo inside the plugin, a broken install, an exception in its
  constructor — is a **bug** and propagates unchanged, traceback included, with a note
  saying which plugin was being loaded. It is never turned into a one-line user error.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from bildwerk.errors import MissingExtraError, UserError

if TYPE_CHECKING:
    from bildwerk.checks.base import Check

T = TypeVar("T")

OWN_DISTRIBUTION = "bildwerk"

# import name -> (package to install, bildwerk extra providing it)
EXTRA_PACKAGES: dict[str, tuple[str, str]] = {
    "torch": ("torch", "diffusion"),
    "diffusers": ("diffusers", "diffusion"),
    "transformers": ("transformers", "diffusion"),
    "peft": ("peft", "diffusion"),
    "safetensors": ("safetensors", "diffusion"),
    "accelerate": ("accelerate", "diffusion"),
    "huggingface_hub": ("huggingface-hub", "diffusion"),
    "spandrel": ("spandrel", "spandrel"),
    "onnxruntime": ("onnxruntime", "qa"),
    "nudenet": ("nudenet", "qa"),
    "rapidocr": ("rapidocr", "qa"),
    "imagehash": ("imagehash", "qa"),
    "cv2": ("opencv-python-headless", "qa"),
    "c2pa": ("c2pa-python", "publish"),
    "fsspec": ("fsspec", "publish"),
    "s3fs": ("s3fs", "publish"),
    "psycopg": ("psycopg[binary]", "postgres"),
}


def missing_dependency(exc: BaseException, plugin_module: str) -> str | None:
    """The top-level module a ``ModuleNotFoundError`` says is missing, when that module is
    a third-party dependency (not the plugin's own package, not the standard library);
    ``None`` when the error is a bug rather than a missing install."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    top = exc.name.partition(".")[0]
    own = plugin_module.partition(".")[0]
    if top in (own, OWN_DISTRIBUTION) or top in sys.stdlib_module_names:
        return None
    return top


class Registry(Generic[T]):
    """Names of one kind of plugin and how to load them.

    ``kind`` is what a person calls one ("generation backend"); ``group`` the entry-point
    group; ``defaults`` the built-ins; ``cache`` keeps one instance per process and name
    (for plugins that load models: backends, checks).
    """

    def __init__(
        self,
        kind: str,
        group: str,
        defaults: Mapping[str, str],
        *,
        cache: bool = False,
    ) -> None:
        self.kind = kind
        self.group = group
        self.defaults = dict(defaults)
        self.cache = cache
        self._lock = threading.RLock()
        self._plugins: dict[str, list[EntryPoint]] | None = None
        self._factories: dict[str, Callable[..., T]] = {}
        self._instances: dict[str, T] = {}

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, group={self.group!r})"

    # ------------------------------------------------------------------ names

    def _entry_points(self) -> dict[str, list[EntryPoint]]:
        """Entry points of other distributions, by name (bildwerk's own repeat the
        defaults). Read once per process; :meth:`reset` reads them again."""
        with self._lock:
            if self._plugins is None:
                found: dict[str, list[EntryPoint]] = {}
                for ep in entry_points(group=self.group):
                    dist = ep.dist.name if ep.dist is not None else None
                    if dist == OWN_DISTRIBUTION and self.defaults.get(ep.name) == ep.value:
                        continue
                    found.setdefault(ep.name, []).append(ep)
                self._plugins = found
            return self._plugins

    def names(self) -> list[str]:
        """Built-ins in their declared order, then plugins' names sorted."""
        extra = sorted(set(self._entry_points()) - set(self.defaults))
        return [*self.defaults, *extra]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def target(self, name: str) -> str:
        """The ``module:attr`` a name resolves to; a plugin's entry point overrides a
        built-in of the same name."""
        eps = self._entry_points().get(name, [])
        values = {ep.value for ep in eps}
        if len(values) > 1:
            dists = ", ".join(sorted(_dist_name(ep) for ep in eps))
            raise UserError(
                f"{self.kind} '{name}' is declared by several installed packages ({dists})",
                hint="uninstall all but one of them",
            )
        if values:
            return values.pop()
        if name in self.defaults:
            return self.defaults[name]
        raise UserError(
            f"unknown {self.kind} '{name}'",
            hint=f"use one of: {', '.join(self.names())}",
        )

    # ------------------------------------------------------------------ loading

    def load(self, name: str) -> Callable[..., T]:
        """The class or factory behind ``name``, imported on first use."""
        with self._lock:
            if name in self._factories:
                return self._factories[name]
            target = self.target(name)
            module, sep, attr = target.partition(":")
            if not sep or not module or not attr:
                raise UserError(
                    f"{self.kind} '{name}' points at {target!r}, not 'module:attribute'",
                    hint=f"fix the '{self.group}' entry point of the package declaring it",
                )
            with self.loading(name):
                obj: Any = importlib.import_module(module)
                for part in attr.split("."):
                    obj = getattr(obj, part)
            factory = cast("Callable[..., T]", obj)
            self._factories[name] = factory
            return factory

    def create(self, name: str, /, *args: Any, **kwargs: Any) -> T:
        """A new instance built from ``args``; never cached."""
        factory = self.load(name)
        with self.loading(name):
            return factory(*args, **kwargs)

    def get(self, name: str) -> T:
        """An instance built with no arguments: one per process and name when the kind
        caches (models load once), else a new one each call."""
        if not self.cache:
            return self.create(name)
        with self._lock:
            if name not in self._instances:
                self._instances[name] = self.create(name)
            return self._instances[name]

    def reset(self) -> None:
        """Forget entry points, loaded classes and instances (tests; after installs)."""
        with self._lock:
            self._plugins = None
            self._factories.clear()
            self._instances.clear()

    @contextmanager
    def loading(self, name: str) -> Iterator[None]:
        """Context in which importing or building ``name`` happens: a missing third-party
        module becomes :class:`MissingExtraError`; any other exception propagates as it
        is, with a note naming the plugin."""
        target = self.target(name)
        try:
            yield
        except UserError:
            raise  # already says what to do
        except Exception as exc:
            module = target.partition(":")[0]
            what = f"{self.kind} '{name}'"
            missing = missing_dependency(exc, module)
            if missing is None:
                exc.add_note(f"(raised while loading the {what} from {target})")
                raise
            package, extra = EXTRA_PACKAGES.get(missing, (missing, None))
            if module.partition(".")[0] != OWN_DISTRIBUTION:
                extra = None  # a plugin's own dependency: install the package itself
            raise MissingExtraError(package, extra, f"The {what}") from exc


def _dist_name(ep: EntryPoint) -> str:
    return ep.dist.name if ep.dist is not None else f"unknown ({ep.value})"


# --------------------------------------------------------------------------- registries

backends: Registry[Any] = Registry(
    "generation backend",
    "bildwerk.backends",
    {
        "studio": "bildwerk.backends.studio:StudioBackend",
        "diffusers": "bildwerk.backends.diffusers:DiffusersBackend",
        "openai": "bildwerk.backends.openai_images:OpenAIImagesBackend",
        "stability": "bildwerk.backends.stability:StabilityBackend",
    },
    cache=True,
)

checks: Registry[Check] = Registry(
    "QA check",
    "bildwerk.checks",
    {
        "nsfw": "bildwerk.checks.nsfw:NSFWCheck",
        "people": "bildwerk.checks.people:PeopleCheck",
        "legibility": "bildwerk.checks.legibility:LegibilityCheck",
        "contrast": "bildwerk.checks.contrast:ContrastCheck",
        "brand_colour": "bildwerk.checks.brand_colour:BrandColourCheck",
        "logo": "bildwerk.checks.logo:LogoCheck",
        "safe_area": "bildwerk.checks.safe_area:SafeAreaCheck",
        "technical": "bildwerk.checks.technical:TechnicalCheck",
        "clip_score": "bildwerk.checks.clip_score:ClipScoreCheck",
    },
    cache=True,
)

targets: Registry[Any] = Registry(
    "publish target type",
    "bildwerk.targets",
    {
        "folder": "bildwerk.publishers.folder:FolderTarget",
        "s3": "bildwerk.publishers.s3:S3Target",
        "webhook": "bildwerk.publishers.webhook:WebhookTarget",
    },
)

executors: Registry[Any] = Registry(
    "executor",
    "bildwerk.executors",
    {
        "inline": "bildwerk.executors.local:InlineExecutor",
        "process": "bildwerk.executors.local:ProcessExecutor",
    },
)

blob_stores: Registry[Any] = Registry(
    "blob store",
    "bildwerk.blob_stores",
    {
        "local": "bildwerk.blobs.local:LocalBlobStore",
        "object": "bildwerk.blobs.objectstore:ObjectBlobStore",
    },
)

REGISTRIES: tuple[Registry[Any], ...] = (backends, checks, targets, executors, blob_stores)


def all_names() -> dict[str, list[str]]:
    """Every extension point's group and names (for ``--help`` style listings)."""
    return {r.group: r.names() for r in REGISTRIES}


# --------------------------------------------------------------------------- old names

# kept so callers written against the backend-only registry keep working
BACKEND_GROUP = backends.group
DEFAULT_BACKENDS = backends.defaults


def backend_names() -> list[str]:
    return sorted(backends.names())


def backend_target(name: str) -> str:
    """The 'module:attr' a backend name resolves to; entry points override defaults."""
    return backends.target(name)


def get_backend(name: str) -> Any:
    """One instance per process and backend name, so heavy backends stay warm."""
    return backends.get(name)


def reset_all(registries: Iterable[Registry[Any]] = REGISTRIES) -> None:
    for registry in registries:
        registry.reset()
