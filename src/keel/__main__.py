"""``python -m keel …``: the same CLI as the ``keel`` script, for an environment whose scripts folder
is not on ``PATH`` (a virtualenv that is not activated, ``pip install --user``)."""

from __future__ import annotations

from keel.cli import main

if __name__ == "__main__":
    main()
