"""The send ledger is customer-level data: in the web app, only marketers and admins
may download it (it holds customer ids and the server's replies, which can name
addresses)."""

from __future__ import annotations

import pytest

from cpo.run_folder import SEND_LEDGER
from cpo.web.auth import User
from cpo.web.routes.runs import may_download


@pytest.mark.parametrize(("role", "allowed"), [("reviewer", False), ("marketer", True),
                                               ("admin", True)])  # fmt: skip
def test_only_customer_data_roles_may_download_the_ledger(role, allowed):
    assert SEND_LEDGER.personal
    assert may_download(User(1, "someone", role), SEND_LEDGER.name) is allowed
