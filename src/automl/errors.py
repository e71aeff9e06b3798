"""User-facing errors.

Every mistake a user can make (bad flag, bad file, bad key) is raised as :class:`UserError`.
The CLI turns it into one line on stderr and exit code 2, with no traceback, before anything
is launched. Keep messages to one line that names the offending key/file and says how to fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


class UserError(Exception):
    """A mistake in the user's input; printed as one line, exit code 2."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class MachineError(UserError):
    """Not a mistake in the input but a state of the machine the user can act on (Ray could not
    start in time because the machine is overloaded): one line too, exit code 1."""

    exit_code = 1


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A ' (did you mean X?)' suffix for an unknown key, or '' when nothing is close."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


def read_user_text(path: Path, what: str = "", hint: str = "") -> str:
    """Read a file the user pointed us at; every way it can fail is one :class:`UserError`.

    ``what`` names the file in messages ("schema file"); ``hint`` is appended to the
    not-found/unreadable messages (e.g. "; check the --space-file path").
    """
    label = f"{what} " if what else ""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: {label}not found{hint}") from None
    except OSError as exc:  # a folder, no permission, ...
        raise UserError(f"{path}: cannot read the {what or 'file'} ({exc.strerror}){hint}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); save the file "
                        f"as UTF-8") from None
