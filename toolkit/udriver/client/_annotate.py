"""`annotate`: the installed and the available driver of each device (`udriver devices`).

Informational: it uses cached, unexpired metadata unless asked to refresh, and a
repository that fails is logged and skipped, never an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from .._log import getLogger
from ..errors import UdriverError
from ..modalias import Modalias, parse_modalias
from ._config import list_repos
from ._inventory import installed_for, installed_manifests

if TYPE_CHECKING:  # the resolver's modules: only when a repository is configured
    from ._client import Client
    from .resolve import Candidate

__all__ = ["annotate"]

log = getLogger(__name__)


def annotate(devices: Mapping[str, Modalias | str], *, refresh: bool = False,
             client: Client | None = None) -> dict[str, dict[str, dict[str, str] | None]]:
    """Installed and available driver per device, for `udriver devices`.

    Uses cached, unexpired metadata unless `refresh`; repositories that fail are logged
    and skipped (this is informational).

    Returns:
        {bdf: {"installed": {"driver", "version"} | None,
               "available": {"driver", "version", "repo"} | None}}
    """
    aliases = {b: a if isinstance(a, Modalias) else parse_modalias(a) for b, a in devices.items()}
    chosen: dict[str, Candidate | None] = {}
    if client is None:
        try:
            repos = list_repos()
        except UdriverError as e:
            log.warning("%s", e)
            repos = []
        if repos:
            from ._client import Client
            client = Client(repos, offline=not refresh)
    if client is not None:
        have = client.installed_for(aliases)
        if client.repos:
            chosen = client.resolve(aliases, tolerant=True)
    else:  # no repository: what is installed is all there is to say
        have = installed_for(aliases, installed_manifests())
    out: dict[str, dict[str, dict[str, str] | None]] = {}
    for bdf in aliases:
        inst = have[bdf]
        cand = chosen.get(bdf)
        out[bdf] = {
            "installed": ({"driver": inst.driver, "version": inst.version}
                          if inst else None),
            "available": ({"driver": cand.entry.driver, "version": cand.entry.version,
                           "repo": cand.entry.repo} if cand else None),
        }
    return out

