"""Readers for the files in ``deploy/``: the Dockerfile's instructions, the systemd unit.

No Docker and no systemd run here, so tests read the files the way those tools do, closely
enough to check what matters: which stages an image has, what each runs and as whom; which
keys a unit sets. Small on purpose: only the syntax ``deploy/`` uses.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY ...
    args: str  # the rest, continuation lines joined with a space

    def exec_form(self) -> list[str] | None:
        """The JSON array form (``CMD ["a", "b"]``), or None for the shell form."""
        text = self.args
        if self.keyword == "HEALTHCHECK":
            text = text.split(" CMD ", 1)[1] if " CMD " in text else text.removeprefix("CMD ")
        try:
            found = json.loads(text)
        except ValueError:
            return None
        if isinstance(found, list) and all(isinstance(x, str) for x in found):
            return found
        return None

    def flags(self) -> dict[str, str]:
        """``--name=value`` options before the instruction's own arguments."""
        found: dict[str, str] = {}
        for word in shlex.split(self.args):
            if not word.startswith("--"):
                break
            name, _, value = word[2:].partition("=")
            found[name] = value
        return found


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        """Every ``ENV key=value`` of the stage (the ``key=value`` form only)."""
        found: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for word in shlex.split(instruction.args):
                key, sep, value = word.partition("=")
                assert sep, f"ENV in the legacy 'key value' form: {instruction.args}"
                found[key] = value
        return found


@dataclass
class Dockerfile:
    args: dict[str, str]  # ARGs before the first FROM, with their defaults
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)


def instructions(text: str) -> list[Instruction]:
    """The file's instructions: comments dropped, ``\\`` continuations joined."""
    found: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        keyword, _, args = whole.partition(" ")
        found.append(Instruction(keyword.upper(), args.strip()))
    assert not pending, "the file ends inside a continued instruction"
    return found


def read_dockerfile(path: Path) -> Dockerfile:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in instructions(path.read_text(encoding="utf-8")):
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif not stages:
            assert instruction.keyword == "ARG", f"{instruction} before the first FROM"
            key, _, default = instruction.args.partition("=")
            args[key] = default
        else:
            stages[-1].instructions.append(instruction)
    return Dockerfile(args, stages)


def expand(text: str, values: dict[str, str]) -> str:
    """``${NAME}`` and ``$NAME`` replaced from ``values`` (build arguments)."""
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values[m[1] or m[2]], text)


def read_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A systemd unit as section -> key -> every value given (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"a setting before any section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not a KEY=value line: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections
