"""The plant model and its two file formats.

A plant is what an MDSplus tree is to the real dispatcher: trees holding
actions (path, server class, phase, sequence number or dependency, on/off)
plus, for the simulation, what running each action looks like (duration,
outcome, output). Loading validates everything and names the offending field
(and, for TOML, the line), because a typo in a plant should be a one-line fix.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from monitor_app import protocol

RESULTS = ("success", "failure")
PATH_RE = re.compile(r"\\([A-Za-z][A-Za-z0-9_]*)::([A-Za-z0-9_]+(?:[.:][A-Za-z0-9_]+)*)")
DEFAULT_ADDRESS = "127.0.0.1"


class PlantError(ValueError):
    """A plant file that cannot be used; the message names field and line."""


# --- dependency conditions ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ref:
    """An operand: done when the referenced action reported completion."""

    path: str


@dataclass(frozen=True, slots=True)
class Op:
    """``left AND right`` or ``left OR right``."""

    op: str  # "AND" / "OR"
    left: Condition
    right: Condition


Condition = Ref | Op


def parse_condition(text: str) -> Condition:
    """Parse ``A AND B``, ``A OR (B AND C)``; AND binds tighter than OR."""
    tokens = re.findall(r"\(|\)|[^\s()]+", text)
    if not tokens:
        raise ValueError("empty condition")
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        token = tokens[pos]
        pos += 1
        return token

    def primary() -> Condition:
        word = peek()
        if word is None:
            raise ValueError("condition ends too early")
        if word == "(":
            take()
            inner = disjunction()
            if peek() != ")":
                raise ValueError("missing ')'")
            take()
            return inner
        if word == ")" or word.upper() in ("AND", "OR"):
            raise ValueError(f"unexpected {word!r}")
        take()
        return Ref(word)

    def conjunction() -> Condition:
        left = primary()
        while (peek() or "").upper() == "AND":
            take()
            left = Op("AND", left, primary())
        return left

    def disjunction() -> Condition:
        left = conjunction()
        while (peek() or "").upper() == "OR":
            take()
            left = Op("OR", left, conjunction())
        return left

    result = disjunction()
    if pos != len(tokens):
        raise ValueError(f"unexpected {tokens[pos]!r}")
    return result


def condition_paths(cond: Condition) -> list[str]:
    """Every action the condition names, in order."""
    if isinstance(cond, Ref):
        return [cond.path]
    return condition_paths(cond.left) + condition_paths(cond.right)


def condition_depth(cond: Condition) -> int:
    """1 for ``A AND B``; 2 and more for nested conditions (an upstream
    failure case: see the ``nested-vanish`` fault)."""
    if isinstance(cond, Ref):
        return 0
    return 1 + max(condition_depth(cond.left), condition_depth(cond.right))


def condition_holds(cond: Condition, done: set[str]) -> bool:
    if isinstance(cond, Ref):
        return cond.path in done
    if cond.op == "AND":
        return condition_holds(cond.left, done) and condition_holds(cond.right, done)
    return condition_holds(cond.left, done) or condition_holds(cond.right, done)


def condition_text(cond: Condition) -> str:
    if isinstance(cond, Ref):
        return cond.path
    parts = []
    for side in (cond.left, cond.right):
        text = condition_text(side)
        parts.append(f"({text})" if isinstance(side, Op) else text)
    return f"{parts[0]} {cond.op} {parts[1]}"


# --- the model --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Action:
    """One action node of a tree, with how its simulated run behaves."""

    path: str
    server: str
    phase: str
    nid: int
    sequence: int | None = None
    condition: Condition | None = None
    on: bool = True
    timeout: int = 0
    duration: float = 1.0
    result: str = "success"
    output: tuple[str, ...] = ()
    completion: str = ""
    cycle_abort_after: float | None = None

    @property
    def sequential(self) -> bool:
        return self.condition is None


@dataclass(frozen=True, slots=True)
class ServerClass:
    """A server class (IDENT) and the ids the plant runs for it."""

    ident: str
    ids: tuple[str, ...] = ("1",)
    address: str = DEFAULT_ADDRESS
    autostart: bool = True


@dataclass
class Tree:
    name: str
    actions: list[Action]
    by_path: dict[str, Action] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_path = {a.path: a for a in self.actions}

    def phases(self) -> list[str]:
        """Phases in the order the tree first uses them."""
        seen: dict[str, None] = {}
        for action in self.actions:
            if action.on:
                seen.setdefault(action.phase, None)
        return list(seen)


@dataclass
class Plant:
    trees: dict[str, Tree]
    servers: dict[str, ServerClass]
    source: str = ""

    def tree(self, name: str) -> Tree | None:
        return self.trees.get(name)

    def action(self, tree: str, path: str) -> Action | None:
        found = self.trees.get(tree)
        return found.by_path.get(path) if found else None

    def idents(self) -> list[str]:
        """Every server class: declared ones, then any only actions name."""
        names = dict.fromkeys(self.servers)
        for tree in self.trees.values():
            for action in tree.actions:
                names.setdefault(action.server, None)
        return list(names)

    def server_class(self, ident: str) -> ServerClass:
        return self.servers.get(ident) or ServerClass(ident, ids=(), autostart=False)

    def action_count(self) -> int:
        return sum(len(t.actions) for t in self.trees.values())


# --- node ids ------------------------------------------------------------------------


def assign_nids(paths: list[str]) -> dict[str, int]:
    """Node ids as a tree would number them: every member on the way to an
    action gets the next id the first time it is seen, ``TOP`` being 0. This
    reproduces the NIDs of the recorded run."""
    nids: dict[str, int] = {}
    counter = 0
    for path in paths:
        _, _, rest = path.partition("::")
        for index, char in enumerate(rest + "."):
            if char in ".:":
                node = rest[:index]
                if node not in nids:
                    nids[node] = counter
                    counter += 1
        nids.setdefault(path, nids[rest])
    return {p: nids[p] for p in paths}


# --- loading ---------------------------------------------------------------------------


def load_plant(path: str | Path) -> Plant:
    """Load a TOML plant or a ``demo_tree.json`` plant (chosen by suffix)."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlantError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if path.suffix.lower() == ".json":
        return load_json_plant(raw, str(path))
    return load_toml_plant(raw, str(path))


def load_toml_plant(text: str, source: str = "<plant>") -> Plant:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PlantError(f"{source}: not valid TOML: {exc}") from exc
    locate = _Locator(text, source)
    servers: dict[str, ServerClass] = {}
    raw_servers = data.get("servers", {})
    if not isinstance(raw_servers, dict):
        raise PlantError(locate("servers", "must be a table of server classes"))
    for ident, entry in raw_servers.items():
        where = f"servers.{ident}"
        _check_name(ident, where, locate, "server class")
        if not isinstance(entry, dict):
            raise PlantError(locate(where, "must be a table"))
        _unknown(entry, {"ids", "address", "autostart"}, where, locate)
        ids = entry.get("ids", [1])
        if not isinstance(ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids
        ):
            raise PlantError(locate(f"{where}.ids", "must be a list of server ids (integers)"))
        if len(set(ids)) != len(ids):
            raise PlantError(locate(f"{where}.ids", "lists an id twice"))
        address = entry.get("address", DEFAULT_ADDRESS)
        if not isinstance(address, str) or not address or "+" in address:
            raise PlantError(locate(f"{where}.address", "must be a host address"))
        autostart = entry.get("autostart", True)
        if not isinstance(autostart, bool):
            raise PlantError(locate(f"{where}.autostart", "must be true or false"))
        servers[ident] = ServerClass(ident, tuple(str(i) for i in ids), address, autostart)

    raw_trees = data.get("trees", [])
    if not isinstance(raw_trees, list) or not raw_trees:
        raise PlantError(locate("trees", "at least one [[trees]] table is needed"))
    trees: dict[str, Tree] = {}
    unknown_top = set(data) - {"plant", "servers", "trees"}
    if unknown_top:
        raise PlantError(locate(sorted(unknown_top)[0], "unknown top-level table"))
    for t_index, raw_tree in enumerate(raw_trees):
        where = f"trees[{t_index}]"
        if not isinstance(raw_tree, dict):
            raise PlantError(locate(where, "must be a table"))
        _unknown(raw_tree, {"name", "actions"}, where, locate)
        name = raw_tree.get("name")
        if not isinstance(name, str) or not protocol.TREE_RE.fullmatch(name):
            raise PlantError(locate(f"{where}.name", "must be a tree name such as DEMO"))
        name = name.upper()
        if name in trees:
            raise PlantError(locate(f"{where}.name", f"tree {name} is defined twice"))
        actions = raw_tree.get("actions", [])
        if not isinstance(actions, list) or not actions:
            raise PlantError(locate(f"{where}.actions", "needs at least one [[trees.actions]]"))
        specs = []
        for a_index, raw in enumerate(actions):
            a_where = f"{where}.actions[{a_index}]"
            if not isinstance(raw, dict):
                raise PlantError(locate(a_where, "must be a table"))
            specs.append((a_where, raw))
        trees[name] = _build_tree(name, specs, locate, toml=True)
    plant = Plant(trees, servers, source)
    _check_servers(plant, locate)
    return plant


def load_json_plant(text: str, source: str = "<plant>") -> Plant:
    """The plant of the recorded run (``demo_tree.json``), accepted as it is:
    ``_servers`` maps each class to its ids; every other non-``_`` key is a
    tree holding a list of actions."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PlantError(f"{source}: not valid JSON: {exc}") from exc
    locate = _Locator("", source)
    if not isinstance(data, dict):
        raise PlantError(f"{source}: the top level must be an object")
    servers: dict[str, ServerClass] = {}
    raw_servers = data.get("_servers", {})
    if not isinstance(raw_servers, dict):
        raise PlantError(f"{source}: _servers must map server classes to id lists")
    for ident, ids in raw_servers.items():
        where = f"_servers.{ident}"
        _check_name(ident, where, locate, "server class")
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            raise PlantError(f"{source}: {where} must be a list of integer ids")
        servers[ident] = ServerClass(ident, tuple(str(i) for i in ids), autostart=bool(ids))
    trees: dict[str, Tree] = {}
    for name, actions in data.items():
        if name.startswith("_"):
            continue
        if not protocol.TREE_RE.fullmatch(name):
            raise PlantError(f"{source}: {name!r} is not a tree name")
        if not isinstance(actions, list) or not actions:
            raise PlantError(f"{source}: tree {name} must be a non-empty list of actions")
        specs = []
        for index, raw in enumerate(actions):
            where = f"{name}[{index}]"
            if not isinstance(raw, dict):
                raise PlantError(f"{source}: {where} must be an object")
            specs.append((where, raw))
        trees[name.upper()] = _build_tree(name.upper(), specs, locate, toml=False)
    if not trees:
        raise PlantError(f"{source}: no tree in the file")
    plant = Plant(trees, servers, source)
    _check_servers(plant, locate)
    return plant


#: The fields of an action in a plant file, in the order the generator writes them.
ACTION_FIELDS = (
    "path",
    "server",
    "phase",
    "sequence",
    "depends",
    "on",
    "duration",
    "timeout",
    "result",
    "completion",
    "cycle_abort_after",
    "output",
)
_TOML_ACTION_FIELDS = frozenset(ACTION_FIELDS)
# demo_tree.json carries descriptive fields the simulation does not need.
_JSON_EXTRA_FIELDS = {"task", "method", "dependency_style"}


def _build_tree(name: str, specs: list[tuple[str, dict]], locate: _Locator, *, toml: bool) -> Tree:
    allowed = _TOML_ACTION_FIELDS | (set() if toml else _JSON_EXTRA_FIELDS)
    paths: list[str] = []
    seen: set[str] = set()
    for where, raw in specs:
        path = raw.get("path")
        if not isinstance(path, str):
            raise PlantError(locate(f"{where}.path", "is missing or not a string"))
        match = PATH_RE.fullmatch(path)
        if not match:
            raise PlantError(
                locate(
                    f"{where}.path",
                    f"{path!r} is not a full path like \\{name}::TOP.NODE:ACTION",
                    needle=path,
                )
            )
        if match.group(1).upper() != name:
            raise PlantError(
                locate(f"{where}.path", f"{path!r} does not belong to tree {name}", needle=path)
            )
        if "+" in path:
            raise PlantError(locate(f"{where}.path", "may not contain '+'", needle=path))
        if path in seen:
            raise PlantError(locate(f"{where}.path", f"{path!r} is defined twice", needle=path))
        paths.append(path)
        seen.add(path)
    nids = assign_nids(paths)
    actions = []
    for (where, raw), path in zip(specs, paths, strict=True):
        actions.append(_build_action(where, raw, path, nids[path], allowed, locate))
    known = seen
    for action, (where, _) in zip(actions, specs, strict=True):
        if action.condition is not None:
            for ref in condition_paths(action.condition):
                if ref not in known:
                    raise PlantError(
                        locate(
                            f"{where}.depends",
                            f"names {ref!r}, which is not an action of tree {name}",
                            needle=action.path,
                        )
                    )
                if ref == action.path:
                    raise PlantError(
                        locate(f"{where}.depends", "depends on itself", needle=action.path)
                    )
    return Tree(name, actions)


def _build_action(
    where: str, raw: dict, path: str, nid: int, allowed: set[str], locate: _Locator
) -> Action:
    def fail(name: str, message: str) -> PlantError:
        return PlantError(locate(f"{where}.{name}", message, needle=path))

    extra = set(raw) - allowed
    if extra:
        raise fail(sorted(extra)[0], "is not a known action field")
    server = raw.get("server")
    if not isinstance(server, str) or not protocol.NAME_RE.fullmatch(server):
        raise fail("server", "must be a server class name such as TIMING_SERVER")
    phase = raw.get("phase")
    if not isinstance(phase, str) or not protocol.NAME_RE.fullmatch(phase):
        raise fail("phase", "must be a phase name such as INIT")
    sequence = raw.get("sequence")
    depends = raw.get("depends")
    if (sequence is None) == (depends is None):
        raise fail("sequence", "give exactly one of 'sequence' and 'depends'")
    condition = None
    if sequence is not None:
        if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 0:
            raise fail("sequence", "must be a whole number >= 0")
    else:
        if not isinstance(depends, str):
            raise fail("depends", "must be a condition such as 'A AND B'")
        try:
            condition = parse_condition(depends)
        except ValueError as exc:
            raise fail("depends", f"cannot be read: {exc}") from exc
    on = raw.get("on", True)
    if not isinstance(on, bool):
        raise fail("on", "must be true or false")
    timeout = raw.get("timeout", 0)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 0:
        raise fail("timeout", "must be whole seconds >= 0")
    duration = raw.get("duration", 1.0)
    if not isinstance(duration, int | float) or isinstance(duration, bool) or duration < 0:
        raise fail("duration", "must be seconds >= 0")
    result = raw.get("result", "success")
    if result not in RESULTS:
        raise fail("result", f"must be one of {', '.join(RESULTS)}")
    output = raw.get("output", [])
    if not isinstance(output, list) or not all(isinstance(line, str) for line in output):
        raise fail("output", "must be a list of strings")
    completion = raw.get("completion", "")
    if not isinstance(completion, str):
        raise fail("completion", "must be an event name")
    abort_after = raw.get("cycle_abort_after")
    if abort_after is not None and (
        not isinstance(abort_after, int | float) or isinstance(abort_after, bool) or abort_after < 0
    ):
        raise fail("cycle_abort_after", "must be seconds >= 0")
    return Action(
        path=path,
        server=server,
        phase=phase.upper(),
        nid=nid,
        sequence=sequence,
        condition=condition,
        on=on,
        timeout=timeout,
        duration=float(duration),
        result=result,
        output=tuple(output),
        completion=completion,
        cycle_abort_after=float(abort_after) if abort_after is not None else None,
    )


def _check_servers(plant: Plant, locate: _Locator) -> None:
    for tree in plant.trees.values():
        for action in tree.actions:
            if action.server not in plant.servers:
                raise PlantError(
                    locate(
                        "servers",
                        f"server class {action.server} of {action.path} is not "
                        "declared (declare it with ids = [] if it never runs)",
                        needle=action.path,
                    )
                )


def _check_name(name: str, where: str, locate: _Locator, what: str) -> None:
    if not protocol.NAME_RE.fullmatch(name):
        raise PlantError(locate(where, f"{name!r} is not a valid {what} name"))


def _unknown(entry: dict, allowed: set[str], where: str, locate: _Locator) -> None:
    extra = set(entry) - allowed
    if extra:
        raise PlantError(locate(f"{where}.{sorted(extra)[0]}", "is not a known field"))


class _Locator:
    """Turns a field name into a message with the line it is on, found by
    searching the source text (tomllib gives no positions after parsing)."""

    def __init__(self, text: str, source: str) -> None:
        self.lines = text.splitlines()
        self.source = source

    def __call__(self, where: str, message: str, needle: str | None = None) -> str:
        leaf = where.rsplit(".", 1)[-1].split("[", 1)[0]
        line = self._line(needle) if needle else None
        if line is not None:
            line = self._field_after(line, leaf) or line
        elif needle is None:
            line = self._line_of_key(leaf)
        at = f" (line {line})" if line else ""
        return f"{self.source}{at}: {where}: {message}"

    def _field_after(self, start: int, key: str) -> int | None:
        """The line of ``key = ...`` in the table that holds line ``start``."""
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        first = start
        while first > 1 and not self.lines[first - 2].lstrip().startswith("["):
            first -= 1
        for number in range(first, len(self.lines) + 1):
            text = self.lines[number - 1]
            if number > start and text.lstrip().startswith("["):
                break
            if pattern.match(text):
                return number
        return None

    def _line(self, needle: str) -> int | None:
        quoted = (json.dumps(needle), "'" + needle + "'")
        for number, text in enumerate(self.lines, 1):
            if any(q in text for q in quoted):
                return number
        return None

    def _line_of_key(self, key: str) -> int | None:
        pattern = re.compile(rf"^\s*(\[+\s*)?[\w.]*\b{re.escape(key)}\b")
        for number, text in enumerate(self.lines, 1):
            if pattern.match(text):
                return number
        return None


def iter_actions(plant: Plant) -> Iterator[tuple[str, Action]]:
    for name, tree in plant.trees.items():
        for action in tree.actions:
            yield name, action
