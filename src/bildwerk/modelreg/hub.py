"""Pulling a model from the Hugging Face Hub (the ``diffusion`` extra), files filtered to
what a pipeline needs."""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable
from pathlib import Path

from bildwerk.errors import MissingExtraError, UserError
from bildwerk.modelreg.vocab import CONFIG_SUFFIXES, WEIGHT_SUFFIXES

# -- pulling from the Hugging Face Hub ------------------------------------------------


def select_pull_files(files: Iterable[str]) -> list[str]:
    """Which repo files to download: configs, tokenizers and one copy of the weights.

    Per folder, safetensors beat pickles and fp16 variants beat full precision. In a
    diffusers repo the root-level single-file checkpoints duplicate the component
    folders and are skipped (they would double the download)."""
    files = [f for f in files if not any(part.startswith(".") for part in f.split("/"))]
    diffusers_repo = "model_index.json" in files
    chosen = [f for f in files if f.lower().endswith(CONFIG_SUFFIXES)]
    weights: dict[str, list[str]] = {}
    for f in files:
        folder, _, name = f.rpartition("/")
        if name.lower().endswith(WEIGHT_SUFFIXES) and not (diffusers_repo and not folder):
            weights.setdefault(folder, []).append(f)
    for names in weights.values():
        safe = [f for f in names if f.lower().endswith(".safetensors")]
        names = safe or names
        fp16 = [f for f in names if re.search(r"\.fp16[.-]", f)]
        chosen.extend(fp16 or names)
    return sorted(chosen)


def _hub_unreachable(repo_id: str, why: str) -> UserError:
    return UserError(
        f"cannot reach the Hugging Face Hub to download '{repo_id}' ({why})",
        hint="download the model elsewhere and 'bildwerk models add PATH'",
    )


def _offline_env() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def pull_model(
    repo_id: str, dest: Path, *, revision: str | None = None, timeout: float = 15.0
) -> Path:
    """Download a Hub repo's configs and preferred weights into ``dest``, pinned to one
    commit; a clear ``UserError`` at once when offline or the Hub is unreachable (the
    first request is a single, unretried lookup with ``timeout``)."""
    if _offline_env():
        raise _hub_unreachable(repo_id, "HF_HUB_OFFLINE is set")
    try:
        import huggingface_hub as hub
        from huggingface_hub import constants as hub_constants
        from huggingface_hub import errors as hub_errors
    except ImportError as exc:
        raise MissingExtraError("huggingface_hub", "diffusion", "Pulling models") from exc
    net_errors: tuple[type[BaseException], ...] = (
        ConnectionError,
        TimeoutError,
        hub_errors.OfflineModeIsEnabled,
        hub_errors.LocalEntryNotFoundError,
    )
    try:
        import httpx2

        net_errors += (httpx2.TransportError,)
    except ImportError:
        pass
    if hub_constants.HF_HUB_OFFLINE:
        raise _hub_unreachable(repo_id, "HF_HUB_OFFLINE is set")
    endpoint = os.environ.get("HF_ENDPOINT") or None  # read now, not at import time
    dest = Path(dest).expanduser()
    try:
        info = hub.HfApi(endpoint=endpoint).repo_info(repo_id, revision=revision, timeout=timeout)
        siblings = getattr(info, "siblings", None) or []
        wanted = select_pull_files(str(sib.rfilename) for sib in siblings)
        if not any(f.lower().endswith(WEIGHT_SUFFIXES) for f in wanted):
            raise UserError(
                f"'{repo_id}' has no weights bildwerk can use "
                "(.safetensors, .bin, .pt, .pth or .ckpt)",
                hint="check the repo id on the Hub",
            )
        dest.mkdir(parents=True, exist_ok=True)  # only now: a failed lookup leaves nothing
        hub.snapshot_download(
            repo_id,
            revision=info.sha,
            local_dir=dest,
            allow_patterns=[glob.escape(f) for f in wanted],
            etag_timeout=timeout,
            endpoint=endpoint,
        )
    except hub_errors.GatedRepoError:
        raise UserError(
            f"'{repo_id}' is gated: accept its licence on the Hub first",
            hint="then log in (huggingface-cli login, or set HF_TOKEN) and pull again",
        ) from None
    except hub_errors.RepositoryNotFoundError:
        raise UserError(
            f"no model '{repo_id}' on the Hub (or it is private)",
            hint="check the repo id; for a private repo log in or set HF_TOKEN",
        ) from None
    except hub_errors.RevisionNotFoundError:
        raise UserError(
            f"'{repo_id}' has no revision '{revision}'", hint="use a branch, tag or commit"
        ) from None
    except hub_errors.HFValidationError as exc:
        raise UserError(f"invalid repo id '{repo_id}': {exc}", hint="use OWNER/NAME") from None
    except hub_errors.HfHubHTTPError as exc:
        raise _hub_unreachable(repo_id, f"the Hub answered: {exc}") from None
    except net_errors as exc:
        raise _hub_unreachable(repo_id, f"{type(exc).__name__}: {exc}") from None
    except OSError as exc:
        raise UserError(
            f"cannot write the download to {dest}: {exc}",
            hint="check free disk space and permissions",
        ) from None
    return dest.resolve()
