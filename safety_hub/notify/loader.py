"""Load and validate notification policies (``alert_rules/notify/*.yaml``).

Like the rule packs, loading tells everything at once: YAML with the position of every key, the
models (a policy with an error is set aside and the rest validated again), then the checks that
need the people directory, the rule pack or the plant:

- policy names unique across the files;
- every ``to`` target known to the people directory (``check_target``), alert names known to
  the rule pack and enterprises to the plant, each with a "did you mean";
- steps in the order of their ``after``.

Every message is ``file:line:col: policy "name", steps[1]: message``; they are raised together as
``LoadError(path, errors)``. Only ``*.yaml`` files directly in the directory are read (its
``tests/`` folder holds the policy tests).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from safety_hub.errors import LoadError
from safety_hub.notify.schema import PolicyFileModel, PolicyModel
from safety_hub.yamlfile import (
    ChainNames,
    Locator,
    YamlPath,
    YamlSyntaxError,
    node_at,
    original_index,
    parse_document,
    show,
)

POLICY_OWNERS = ChainNames({"policies": ("policy", "name")})
_PRUNABLE = frozenset({"policies"})

TargetCheck = Callable[[str], "str | None"]
"""``check_target(target)``: None when the people directory knows the target, else why not."""


@dataclass(frozen=True)
class PolicySet:
    """Every policy of the policy files, in file order."""

    policies: tuple[PolicyModel, ...]
    files: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[PolicyModel]:
        return iter(self.policies)

    def __len__(self) -> int:
        return len(self.policies)


@dataclass(frozen=True)
class Known:
    """What the references of a policy are checked against; None: not checked."""

    check_target: TargetCheck | None = None
    alerts: Collection[str] | None = None
    enterprises: Collection[str] | None = None


def default_policy_path() -> Path:
    """The shipped policies: ``alert_rules/notify/`` beside the package, else in the working
    directory."""
    for candidate in (
        Path(__file__).resolve().parents[2] / "alert_rules" / "notify",
        Path("alert_rules") / "notify",
    ):
        if candidate.is_dir():
            return candidate
    return Path("alert_rules") / "notify"


def policy_files(root: Path) -> list[Path]:
    """``*.yaml`` files directly in ``root`` (not its subfolders), or ``root`` itself."""
    if root.is_dir():
        return sorted(p for p in root.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))
    return [root]


def load_policies(path: str | Path | Sequence[str | Path], known: Known = Known()) -> PolicySet:
    """Read the policy files at ``path`` (a directory, a file or several); ``LoadError`` lists
    every problem as ``file:line:col: message``."""
    roots = [Path(p) for p in ([path] if isinstance(path, str | Path) else path)]
    sources: list[tuple[str, str]] = []
    errors: list[str] = []
    for root in roots:
        if not root.exists():
            errors.append(f"{root}: no such file or directory")
            continue
        for file in policy_files(root):
            sources.append((str(file), file.read_text(encoding="utf-8")))
    name = ", ".join(str(r) for r in roots)
    if errors:
        raise LoadError(name, errors)
    return parse_policies(sources, known, name)


def parse_policies(sources: Sequence[tuple[str, str]], known: Known, path: str = "") -> PolicySet:
    checker = _Checker(known)
    for file, text in sources:
        checker.add_file(file, text)
    if checker.errors:
        raise LoadError(path or ", ".join(f for f, _ in sources), checker.errors)
    return PolicySet(tuple(checker.policies), tuple(f for f, _ in sources))


class _Checker:
    def __init__(self, known: Known) -> None:
        self.known = known
        self.errors: list[str] = []
        self.policies: list[PolicyModel] = []
        self._first: dict[str, str] = {}

    def add_file(self, file: str, text: str) -> None:
        try:
            doc = parse_document(
                file,
                text,
                PolicyFileModel,
                POLICY_OWNERS,
                _PRUNABLE,
                empty="the file is empty (expected policies:)",
                discriminator=None,
            )
        except YamlSyntaxError as exc:
            self.errors.append(exc.at(file))
            return
        self.errors.extend(text for _, _, text in doc.errors)
        if doc.model is None:
            return
        for i, policy in enumerate(doc.model.policies):
            path: YamlPath = ("policies", original_index(doc.index_map, ("policies",), i))
            before = len(self.errors)
            self._check(doc.loc, path, policy)
            if len(self.errors) == before:
                self.policies.append(policy)

    def _error(self, loc: Locator, path: YamlPath, message: str) -> None:
        self.errors.append(loc.at(path, message)[2])

    def _check(self, loc: Locator, path: YamlPath, policy: PolicyModel) -> None:
        line, col = loc.pos((*path, "name"))
        first = self._first.get(policy.name)
        if first is not None:
            self._error(loc, (*path, "name"), f"duplicate policy {show(policy.name)} ({first})")
        else:
            self._first[policy.name] = f"first at {loc.file}:{line}:{col}"
        last = 0
        for si, step in enumerate(policy.steps):
            if step.after < last:
                self._error(loc, (*path, "steps", si, "after"), "steps must be in order of after")
            last = step.after
            self._targets(loc, (*path, "steps", si, "to"), step.to)
        if policy.on_clear is not None and policy.on_clear.to is not None:
            self._targets(loc, (*path, "on_clear", "to"), policy.on_clear.to)
        match = policy.match
        self._names(loc, (*path, "match", "alert"), match.alert, self.known.alerts, "alert")
        self._names(
            loc,
            (*path, "match", "enterprise"),
            match.enterprise,
            self.known.enterprises,
            "enterprise",
        )

    def _targets(self, loc: Locator, path: YamlPath, targets: Sequence[str]) -> None:
        check = self.known.check_target
        if check is None:
            return
        for i, target in enumerate(targets):
            problem = check(target)
            if problem is not None:
                at: YamlPath = (*path, i) if isinstance(node_at(loc.data, path), list) else path
                self._error(loc, at, f"target {show(target)}: {problem}")

    def _names(
        self,
        loc: Locator,
        path: YamlPath,
        names: Sequence[str] | None,
        known: Collection[str] | None,
        what: str,
    ) -> None:
        if names is None or known is None:
            return
        for i, name in enumerate(names):
            if name in known:
                continue
            close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            at: YamlPath = (*path, i) if isinstance(node_at(loc.data, path), list) else path
            self._error(loc, at, f"unknown {what} {show(name)}{hint}")
