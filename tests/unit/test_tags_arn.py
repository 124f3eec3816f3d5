"""owner_from_arn on the ARNs whose resource part has a colon or several "@": the owner is
the text after the fifth colon's last "/", up to its first "@" (a parser that split
elsewhere names another owner)."""

from __future__ import annotations

import pytest

from hgautomation.aws import tags as T


@pytest.mark.parametrize("arn, owner", [
    ("arn:aws:sts::123456789012:assumed-role/R/a:b", "a-b"),
    ("arn:aws:iam::123456789012:user/x:y/eve", "eve"),
    ("arn:aws:sts::123456789012:assumed-role/R/fay@a@b", "fay"),
])
def test_owner_from_unusual_arns(arn, owner):
    assert T.owner_from_arn(arn) == owner
