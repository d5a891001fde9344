"""Namespaces (PEP 752): which project names belong to whom, and who may publish under them.

A namespace is a normalized project name, ``acme``. It covers the project named exactly
``acme`` and every project whose normalized name starts with ``acme-`` (``Acme.Tools`` is
``acme-tools``: covered; ``acmetools`` and ``my-acme`` are not). It has an *owner* (a label: a
team, shown at ``/simple/namespace/<name>``) and *grants*: the principals who may publish new
projects under it (a token by its id, ``user:NAME`` for an htpasswd user, ``publisher:ID`` for
a trusted publisher). An *open* namespace lets anyone who may upload publish under it: its names
are still reserved (a view never takes them from upstream).

The rule, pure: an upload of project P by principal X proceeds unless P is covered by a
namespace none of whose covering namespaces is open or grants X, and P does not predate the
reservation (projects listed when the namespace was added keep taking uploads as before, and
their pages say ``"owned": false``). The refusal is a 409 naming the namespace and how to get
a grant. A file dropped into storage has no principal: it may add to a listed project, never
start a new one inside a namespace.

>>> acme = Namespace.create("Acme", owner="platform", predating={"acme-legacy"})
>>> ns = Namespaces((acme,))
>>> ns.refusal("acme-tools", "token:0a1b2c3d4e5f") is not None, ns.refusal("acme-legacy", "")
(True, None)
>>> ns.grant("acme", "token:0a1b2c3d4e5f").refusal("acme_tools", "token:0a1b2c3d4e5f") is None
True
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Final

from packaging.utils import NormalizedName, canonicalize_name

from skypi.core.errors import Conflict, DoesNotExist, InvalidRequest, Reserved
from skypi.core.pages import NamespaceEntries, NamespaceEntry

# PEP 752: repositories SHOULD cap the depth (hyphens) of a namespace; two allows
# ``acme-cloud-storage`` under ``acme-cloud`` under ``acme``.
MAX_DEPTH: Final = 2
MAX_OWNER: Final = 100
MAX_NAME: Final = 100
# A principal as a grant names it: a token's id (``skypi token list``), an htpasswd user, a
# trusted publisher's id (``skypi publisher list``).
_PRINCIPAL: Final = re.compile(r"(token:[0-9a-f]{12}|user:[!-~]{1,100}|publisher:[!-~]{1,100})")
_VALID_NAME: Final = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")


def namespace_name(text: str) -> NormalizedName:
    """``text`` as a namespace: a valid project name, normalized, at most :data:`MAX_DEPTH`
    hyphens deep; :class:`InvalidRequest` says why not.

    >>> namespace_name("Acme_Cloud")
    'acme-cloud'
    >>> namespace_name("a-b-c-d")
    Traceback (most recent call last):
    skypi.core.errors.InvalidRequest: 'a-b-c-d' is 3 levels deep: this index takes namespaces \
of at most 2 hyphens (acme, acme-cloud, acme-cloud-eu).
    """
    if len(text) > MAX_NAME or not _VALID_NAME.fullmatch(text):
        raise InvalidRequest(
            f"{text[:MAX_NAME]!r} is not a namespace: a namespace is a project name (letters, "
            "digits, '.', '_' and '-', starting and ending with a letter or digit)."
        )
    name = canonicalize_name(text)
    if name.count("-") > MAX_DEPTH:
        raise InvalidRequest(
            f"{text!r} is {name.count('-')} levels deep: this index takes namespaces of at most "
            f"{MAX_DEPTH} hyphens (acme, acme-cloud, acme-cloud-eu)."
        )
    return name


def check_principal(text: str) -> str:
    """A principal as grants name it, or :class:`InvalidRequest`.

    >>> check_principal("token:0123456789ab"), check_principal("publisher:a1b2")
    ('token:0123456789ab', 'publisher:a1b2')
    """
    if not _PRINCIPAL.fullmatch(text):
        raise InvalidRequest(
            f"{text[:MAX_NAME]!r} is not a principal: give token:ID (the id 'skypi token list' "
            "shows), user:NAME (an htpasswd user) or publisher:ID ('skypi publisher list')."
        )
    return text


def covers(namespace: str, project: str) -> bool:
    """Whether the (normalized) ``namespace`` covers the (normalized) ``project``.

    >>> [covers("acme", p) for p in ("acme", "acme-tools", "acmetools", "my-acme")]
    [True, True, False, False]
    """
    return project == namespace or project.startswith(f"{namespace}-")


def overlaps(proposed: str, existing: str) -> bool:
    """PEP 752's overlap test: with ``-`` appended to both, one starts with the other.

    >>> overlaps("acme", "acme-cloud"), overlaps("acmecorp", "acme"), overlaps("acme", "acme")
    (True, False, True)
    """
    a, b = f"{proposed}-", f"{existing}-"
    return a.startswith(b) or b.startswith(a)


@dataclass(frozen=True)
class Namespace:
    """One reserved namespace."""

    name: NormalizedName
    owner: str
    grants: frozenset[str] = frozenset()
    open: bool = False
    predating: frozenset[NormalizedName] = frozenset()  # listed when it was reserved

    @classmethod
    def create(
        cls,
        name: str,
        *,
        owner: str,
        grants: Iterable[str] = (),
        open: bool = False,
        predating: Iterable[str] = (),
    ) -> Namespace:
        owner = owner.strip()
        if not owner or len(owner) > MAX_OWNER or not owner.isprintable():
            raise InvalidRequest(
                f"Give the namespace an owner: a printable label of at most {MAX_OWNER} "
                "characters (a team's name, shown to readers)."
            )
        ns = namespace_name(name)
        return cls(
            ns,
            owner,
            frozenset(check_principal(p) for p in grants),
            open,
            frozenset(p for p in map(canonicalize_name, predating) if covers(ns, p)),
        )

    def allows(self, principal: str | None) -> bool:
        return self.open or (principal is not None and principal in self.grants)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "owner": self.owner,
            "grants": sorted(self.grants),
            "open": self.open,
            "predating": sorted(self.predating),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Namespace:
        return cls.create(
            data["name"],
            owner=data["owner"],
            grants=data.get("grants", ()),
            open=bool(data.get("open", False)),
            predating=data.get("predating", ()),
        )


@dataclass(frozen=True)
class Namespaces:
    """Every namespace of one index: the one document the upload check and the pages read."""

    items: tuple[Namespace, ...] = ()
    by_name: dict[str, Namespace] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.items, key=lambda n: n.name))
        object.__setattr__(self, "items", ordered)
        object.__setattr__(self, "by_name", {n.name: n for n in ordered})

    def __iter__(self) -> Iterator[Namespace]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def get(self, name: str) -> Namespace:
        found = self.by_name.get(canonicalize_name(name))
        if found is None:
            raise DoesNotExist(f"No namespace {name!r}: see 'skypi namespace list'.")
        return found

    def covering(self, project: str) -> list[Namespace]:
        """The namespaces that cover ``project``, outermost first."""
        name = canonicalize_name(project)
        return [n for n in self.items if covers(n.name, name)]

    def entries(self, project: str) -> NamespaceEntries:
        """PEP 752's ``namespaces`` of a project page: (name, owned) per covering namespace,
        or None when none covers it. ``owned`` is False for a project that predates it."""
        found = self.covering(project)
        name = canonicalize_name(project)
        if not found:
            return None
        return tuple(NamespaceEntry(n.name, name not in n.predating, n.owner) for n in found)

    def refusal(self, project: str, principal: str | None, *, listed: bool = False) -> str | None:
        """Why ``principal`` may not publish ``project`` (the 409's message), or None.

        ``principal`` None: a file dropped into storage, which may add to a ``listed``
        project but never start one inside a namespace."""
        found = self.covering(project)
        name = canonicalize_name(project)
        if not found or any(name in n.predating or n.allows(principal) for n in found):
            return None
        if principal is None and listed:
            return None
        ns = found[-1]  # the innermost: the one to ask for
        who = principal or "PRINCIPAL"
        return (
            f"The name {name!r} is in the namespace {ns.name!r}, reserved for {ns.owner}"
            f"{'' if principal else ': a file dropped into storage cannot start a project there'}"
            f". Ask an admin of this index for a grant: skypi namespace grant {ns.name} {who}."
        )

    def check(self, project: str, principal: str | None, *, listed: bool = False) -> None:
        """:meth:`refusal` as the error an upload answers with (409)."""
        if (message := self.refusal(project, principal, listed=listed)) is not None:
            raise Reserved(message)

    def add(self, namespace: Namespace) -> Namespaces:
        """With ``namespace`` added; :class:`Conflict` when it overlaps one of another owner
        (PEP 752: only the owner of ``acme-cloud`` may be granted ``acme``) or exists."""
        if namespace.name in self.by_name:
            raise Conflict(f"The namespace {namespace.name!r} exists already.")
        for other in self.items:
            if overlaps(namespace.name, other.name) and other.owner != namespace.owner:
                raise Conflict(
                    f"The namespace {namespace.name!r} overlaps {other.name!r}, reserved for "
                    f"{other.owner}: only the same owner may hold both."
                )
        return Namespaces((*self.items, namespace))

    def remove(self, name: str) -> Namespaces:
        gone = self.get(name)
        return Namespaces(tuple(n for n in self.items if n is not gone))

    def grant(self, name: str, principal: str) -> Namespaces:
        ns = self.get(name)
        changed = replace(ns, grants=ns.grants | {check_principal(principal)})
        return Namespaces(tuple(changed if n is ns else n for n in self.items))

    def revoke(self, name: str, principal: str) -> Namespaces:
        ns = self.get(name)
        if principal not in ns.grants:
            raise DoesNotExist(f"The namespace {ns.name!r} grants nothing to {principal!r}.")
        changed = replace(ns, grants=ns.grants - {principal})
        return Namespaces(tuple(changed if n is ns else n for n in self.items))

    # -- the documents: the records, and what the namespace endpoints serve (PEP 752) -----------

    def to_json_bytes(self) -> bytes:
        return json.dumps({"namespaces": [n.to_json() for n in self.items]}, indent=1).encode()

    @classmethod
    def from_json_bytes(cls, raw: bytes) -> Namespaces:
        """The stored records; ValueError when ``raw`` is not (a hand-edited, damaged file)."""
        try:
            return cls(tuple(Namespace.from_json(n) for n in json.loads(raw)["namespaces"]))
        except (ValueError, KeyError, TypeError, AttributeError, InvalidRequest) as exc:
            raise ValueError(f"not namespace records: {type(exc).__name__}: {exc}") from exc

    def listing(self) -> bytes:
        """``GET /simple/namespaces``: one ``{"name"}`` per namespace."""
        return _compact([{"name": n.name} for n in self.items])

    def parent(self, name: str) -> str | None:
        """The nearest namespace that covers ``name`` (itself excluded)."""
        above = [n.name for n in self.items if n.name != name and covers(n.name, name)]
        return max(above, key=len) if above else None

    def detail(self, name: str) -> bytes:
        """``GET /simple/namespace/<name>``: its parent, its direct children, its owner."""
        ns = self.get(name)
        children = [n.name for n in self.items if self.parent(n.name) == ns.name]
        doc = {
            "name": ns.name,
            "parent": self.parent(ns.name),
            "children": children,
            "owner": ns.owner,
        }
        return _compact(doc)


def _compact(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode() + b"\n"
