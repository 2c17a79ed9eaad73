"""What is specific to developing this repository.

The options (``--impl``, ``--backends``, ``--require-backends``, ``--device``), the profiles and the ``impl``
fixture belong to the installed plugin (``mlp_crosscheck/plugin.py``), so that they work the same from any
project. The claims carry their profile's settings themselves; the repository's own tests (``tests/``) are
not claims, and run under the same profile, loaded globally here.
"""

from __future__ import annotations

import pytest
from hypothesis import settings
from mlp_crosscheck.properties import profiles


@pytest.hookimpl(trylast=True)  # after the plugin has chosen the profile from the command line
def pytest_configure(config: pytest.Config) -> None:
    settings.load_profile(profiles.active())
