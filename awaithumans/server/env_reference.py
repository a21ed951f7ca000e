"""The environment reference (``docs/env.md``), generated from :class:`Settings`.

Every ``AWAITHUMANS_*`` variable the server reads is a field of ``Settings`` or of one of
its groups (Slack, email, SMTP, verifiers), each a ``BaseSettings`` of its own with its own
prefix, built by the field's default factory: that is how pydantic-settings reads them, so
the names here are the group's prefix and the field's name, or the field's alias when it
has one (``AWAITHUMANS_EMAIL_FROM``). Writing the page from the classes keeps it true; a
test regenerates it and fails when the committed page differs, or when a field has no
description. Secrets never show a default.

Regenerate after changing ``settings.py``::

    python -m awaithumans.server.env_reference            # writes docs/env.md
    python -m awaithumans.server.env_reference --check    # exit 1 when it is stale
"""

from __future__ import annotations

import argparse
import re
import sys
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import annotated_types
from pydantic import IPvAnyNetwork, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from awaithumans.server.settings import Settings

DEFAULT_PATH = Path("docs/env.md")
COMMAND = "python -m awaithumans.server.env_reference"

_HEADER = f"""\
# Environment variables

<!-- Generated from awaithumans/server/settings.py by `{COMMAND}`:
     edit the descriptions there, not here. A test fails when this page is stale. -->

Everything the server reads from its environment, group by group. A command-line flag or
an explicit `Settings(...)` argument wins over the variable, which wins over the default.
Names are not case-sensitive. In the Slack and email groups, a blank value means unset.
`awaithumans serve` refuses to start without `AWAITHUMANS_DATABASE_URL` and
`AWAITHUMANS_PAYLOAD_KEY`; [the deployment guide](deploy.md) says which others a
production server needs. Defaults of secrets are never shown (none has one).

Each group can also be given whole, as one JSON object in the group's own variable
(`AWAITHUMANS_SLACK`, `AWAITHUMANS_EMAIL`, `AWAITHUMANS_EMAIL_SMTP`, `AWAITHUMANS_VERIFIER`),
which then replaces the group's separate variables: leave those unset.
"""


@dataclass(frozen=True)
class EnvVar:
    """One variable: the names it is read under, and what the page says about it."""

    names: tuple[str, ...]
    field: str  # where it lives in Settings, e.g. ``email.smtp.host``
    kind: str
    default: str
    description: str | None


@dataclass(frozen=True)
class Group:
    title: str
    summary: str
    variables: tuple[EnvVar, ...]


def _settings_class(annotation: object) -> type[BaseSettings] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseSettings):
        return annotation
    return None


def env_names(model: type[BaseSettings], name: str, field: FieldInfo) -> tuple[str, ...]:
    """The variables pydantic-settings reads ``name`` from, the one that wins first.

    An alias is the whole variable name (no prefix is added); with ``populate_by_name``
    the prefixed field name is read too, after it.
    """
    prefix = str(model.model_config.get("env_prefix", ""))
    own = (prefix + name).upper()
    alias = field.validation_alias
    if alias is None:
        return (own,)
    if not isinstance(alias, str):
        raise TypeError(f"{model.__name__}.{name}: only plain string aliases are described")
    if model.model_config.get("populate_by_name") or model.model_config.get("validate_by_name"):
        return (alias.upper(), own)
    return (alias.upper(),)


def _is_secret(annotation: object) -> bool:
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)


def _bounds(field: FieldInfo) -> str:
    """``≥ 1, ≤ 65535`` from the field's ``ge``/``gt``/``le``/``lt``."""
    signs = []
    for rule in field.metadata:
        if isinstance(rule, annotated_types.Ge):
            signs.append(f"≥ {_number(rule.ge)}")
        elif isinstance(rule, annotated_types.Gt):
            signs.append(f"> {_number(rule.gt)}")
        elif isinstance(rule, annotated_types.Le):
            signs.append(f"≤ {_number(rule.le)}")
        elif isinstance(rule, annotated_types.Lt):
            signs.append(f"< {_number(rule.lt)}")
    return ", ".join(signs)


def _kind(annotation: object) -> str:
    """The value a variable takes, in words."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _kind(args[0])
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in typing.get_args(annotation))
    if origin is list and args[0] is str:
        return "comma-separated names"
    if origin is list and args[0] is IPvAnyNetwork:
        return "comma-separated IP addresses or networks (CIDR)"
    if origin is tuple:
        return "COUNT/SECONDS"  # the RateLimit type: its validator reads "20/600"
    simple = {
        str: "text",
        int: "integer",
        float: "number",
        bool: "true or false",
        Path: "path",
        SecretStr: "secret",
    }
    if isinstance(annotation, type) and annotation in simple:
        return simple[annotation]
    raise TypeError(f"no words for the type {annotation!r}: add them to env_reference._kind")


def _number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _default(field: FieldInfo) -> str:
    if _is_secret(field.annotation):
        return "—"
    value = field.get_default(call_default_factory=True)
    if value is None or value == []:
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple):
        return "`" + "/".join(_number(v) for v in value) + "`"
    return f"`{_number(value)}`"


def _variables(model: type[BaseSettings], path: str) -> Iterator[EnvVar | Group]:
    for name, field in model.model_fields.items():
        nested = _settings_class(field.annotation)
        if nested is not None:
            yield from _group(nested, f"{path}{name}.")
            continue
        kind = _kind(field.annotation)
        bounds = _bounds(field)
        yield EnvVar(
            names=env_names(model, name, field),
            field=path + name,
            kind=f"{kind}, {bounds}" if bounds else kind,
            default=_default(field),
            description=field.description,
        )


def _markdown(rst: str, model: type[BaseSettings]) -> str:
    """A group's docstring in Markdown, its fields named by their variables."""

    def code(found: re.Match[str]) -> str:
        name = found[1]
        field = model.model_fields.get(name)
        return f"`{env_names(model, name, field)[0] if field else name}`"

    return re.sub(r"``([^`]+)``", code, rst)


def _group(model: type[BaseSettings], path: str = "") -> Iterator[Group]:
    if model is Settings:
        # Its docstring speaks to code; the page wants a heading.
        title, summary = "The server: `AWAITHUMANS_*`", ""
    else:
        title, _, summary = _markdown((model.__doc__ or "").strip(), model).partition("\n")
    own: list[EnvVar] = []
    nested: list[Group] = []
    for item in _variables(model, path):
        if isinstance(item, Group):
            nested.append(item)
        else:
            own.append(item)
    yield Group(title.rstrip("."), " ".join(summary.split()), tuple(own))
    yield from nested


def groups() -> list[Group]:
    """Every group of settings, the server's own first, in the order of the classes."""
    return list(_group(Settings))


def undocumented() -> list[str]:
    """The fields (``email.smtp.host``) that have no description: the page needs one."""
    return [v.field for g in groups() for v in g.variables if not v.description]


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render() -> str:
    """The whole page, as committed in ``docs/env.md``."""
    parts = [_HEADER]
    for group in groups():
        parts.append(f"\n## {group.title}\n")
        if group.summary:
            parts.append(f"\n{group.summary}\n")
        parts.append("\n| variable | value | default | what it does |\n|---|---|---|---|\n")
        for var in group.variables:
            names = " (or ".join(f"`{n}`" for n in var.names) + ")" * (len(var.names) - 1)
            parts.append(
                f"| {names} | {_cell(var.kind)} | {_cell(var.default)}"
                f" | {_cell(var.description or '')} |\n"
            )
    return "".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n")[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 when the page is stale"
    )
    args = parser.parse_args(argv)
    missing = undocumented()
    if missing:
        print(f"Fields without a description: {', '.join(missing)}", file=sys.stderr)
        return 1
    page = render()
    current = args.path.read_text(encoding="utf-8") if args.path.exists() else None
    if args.check:
        if current != page:
            print(f"{args.path} is stale: run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    if current != page:
        args.path.parent.mkdir(parents=True, exist_ok=True)
        args.path.write_text(page, encoding="utf-8")
        print(f"wrote {args.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
