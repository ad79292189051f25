"""The command that opens MLflow's UI on tuneloop's embedded (SQLite) tracking store."""

from __future__ import annotations

import shlex

from tuneloop.errors import InvalidInputError
from tuneloop.tracking.connection import default_artifact_root, sqlite_path

DEFAULT_UI_PORT = 5000


def ui_command(tracking_uri: str, *, port: int = DEFAULT_UI_PORT) -> str:
    """The exact shell command, e.g.
    ``mlflow ui --backend-store-uri sqlite:////home/me/.tuneloop/mlflow.db --artifacts-destination
    file:///home/me/.tuneloop/mlartifacts``. The path is made absolute, so the command works from
    any folder; experiments created in the UI keep their artifacts in the workspace too.
    An ``http(s)://`` tracking URI is a server already: open it in a browser instead.
    """
    db = sqlite_path(tracking_uri)
    if db is None:
        raise InvalidInputError(
            f"{tracking_uri.split('@')[-1]!r} is not an embedded SQLite store; "
            "if it is a tracking server, open its URL in a browser"
        )
    store = f"sqlite:///{db.resolve()}"
    args = ["mlflow", "ui", "--backend-store-uri", store]
    args += ["--artifacts-destination", str(default_artifact_root(store))]
    if port != DEFAULT_UI_PORT:
        args += ["--port", str(port)]
    return shlex.join(args)
