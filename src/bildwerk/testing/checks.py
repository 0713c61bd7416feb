"""The contract every QA check passes (``bildwerk.checks`` entry points)."""

from __future__ import annotations

import math
from typing import ClassVar, get_args

import pytest
from PIL import Image

from bildwerk.checks.base import Check, CheckContext, CheckResult, Verdict
from bildwerk.registry import checks
from bildwerk.testing.common import OPTIONAL_MODULES, assert_json, hide_modules, package_names

VERDICTS = frozenset(get_args(Verdict))


def run_guarded(check: Check, image: Image.Image, context: CheckContext) -> CheckResult:
    """Run ``check`` as the QA stage does (:func:`bildwerk.stages.qa.run_checks`): an
    exception becomes an ``unchecked`` result with the reason, never a pass."""
    from bildwerk.stages.qa import unchecked

    try:
        return check.run(image, context)
    except Exception as exc:
        return unchecked(check.name, exc)


class CheckContract:
    """Tests every :class:`~bildwerk.checks.base.Check` must pass.

    Subclass it in a ``Test…`` class, set :attr:`registered_name`, and implement
    :meth:`make_check` and :meth:`sample` (a creative and context the check can judge:
    it must not answer ``skip`` or ``unchecked`` for it)::

        class TestMyCheck(CheckContract):
            registered_name = "mine"            # its name in ``bildwerk.checks``
            extra_modules = ("mylib",)          # hidden to simulate a missing extra
            def make_check(self): return MyCheck()
            def sample(self): return image, CheckContext(channel=..., brand=...)

    With its extra missing a check must come out ``unchecked`` through the QA stage (it
    may raise :class:`~bildwerk.errors.MissingExtraError` or answer ``unchecked`` itself),
    with a reason that says what to install; a check needing no extra must give the same
    result with every module of bildwerk's extras hidden.
    """

    registered_name: ClassVar[str] = ""
    extra_modules: ClassVar[tuple[str, ...]] = ()

    def make_check(self) -> Check:
        """A new check instance, as the registry would build it."""
        raise NotImplementedError

    def sample(self) -> tuple[Image.Image, CheckContext]:
        """A small creative the check applies to, and its context."""
        raise NotImplementedError

    def forget_models(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Drop process-wide model and result caches for the rest of the test, so a hidden
        extra is noticed; use ``monkeypatch`` so they come back afterwards."""

    # ------------------------------------------------------------------ tests

    def test_name_and_protocol(self) -> None:
        check = self.make_check()
        assert isinstance(check, Check)
        assert check.name == self.registered_name
        factory = checks.load(self.registered_name)
        if isinstance(factory, type):
            assert isinstance(check, factory), f"'{self.registered_name}' names {factory}"

    def test_result_shape_score_and_evidence(self) -> None:
        image, context = self.sample()
        result = self.make_check().run(image, context)
        assert isinstance(result, CheckResult)
        assert result.name == self.registered_name, "a result names the check that made it"
        assert result.verdict in VERDICTS, result.verdict
        assert result.verdict not in ("skip", "unchecked"), (
            f"the sample must be one the check can judge; got {result.verdict}: {result.reason}"
        )
        if result.score is not None:
            assert isinstance(result.score, int | float) and not isinstance(result.score, bool)
            assert math.isfinite(result.score) and 0.0 <= result.score <= 1.0, result.score
        assert result.reason is None or isinstance(result.reason, str)
        if result.verdict in ("warn", "fail"):
            assert result.reason, "a warning or failure says why"
        assert isinstance(result.evidence, dict)
        assert all(isinstance(k, str) for k in result.evidence), "evidence keys are strings"
        assert_json(result.to_json(), f"{self.registered_name}: CheckResult")

    def test_deterministic(self) -> None:
        image, context = self.sample()
        check = self.make_check()
        first = check.run(image, context).to_json()
        assert check.run(image, context).to_json() == first, "same input, same instance"
        assert self.make_check().run(image, context).to_json() == first, "new instance"
        copy_image, copy_context = self.sample()
        assert check.run(copy_image, copy_context).to_json() == first, "an equal creative"

    def test_leaves_the_creative_alone(self) -> None:
        image, context = self.sample()
        before = (image.mode, image.size, image.tobytes())
        scene = context.scene.tobytes() if context.scene is not None else None
        logo = context.logo.tobytes() if context.logo is not None else None
        self.make_check().run(image, context)
        assert (image.mode, image.size, image.tobytes()) == before, "the check drew on it"
        assert (context.scene.tobytes() if context.scene is not None else None) == scene
        assert (context.logo.tobytes() if context.logo is not None else None) == logo

    def test_missing_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        image, context = self.sample()
        if not self.extra_modules:
            expected = self.make_check().run(image, context).to_json()
            hide_modules(monkeypatch, OPTIONAL_MODULES)
            self.forget_models(monkeypatch)
            assert self.make_check().run(image, context).to_json() == expected
            return
        hide_modules(monkeypatch, self.extra_modules)
        self.forget_models(monkeypatch)
        result = run_guarded(self.make_check(), image, context)
        assert result.verdict == "unchecked", (
            f"with its extra missing '{self.registered_name}' said {result.verdict}: "
            "what could not be checked is never a pass"
        )
        assert result.name == self.registered_name and result.score is None
        reason = result.reason or ""
        assert "pip install" in reason, f"the reason must say what to install: {reason!r}"
        assert any(name in reason for name in package_names(self.extra_modules)) or (
            "bildwerk[" in reason
        ), reason
