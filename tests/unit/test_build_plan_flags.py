"""build_plan: the flavour of a run's flags when several are given, an option value with
an "=" in it, and each own-hg flag (a plan that built another flavour than the tests ask
for, or built when the flags name the hg to test, fails here)."""

from __future__ import annotations

import pytest

from hgautomation import linux


@pytest.mark.parametrize("flags, mode, extras", [
    (["--rust", "--pure"], "pure", ()),
    (["--pure", "--rust"], "pure", ()),
    (["--rust", "--chg", "--chg"], "rust", ("chg",)),
    (["--rhg", "--chg"], "default", ("chg", "rhg")),
    (["pure", "--rust=1"], "rust", ()),
])
def test_flavour_of_several_flags(flags, mode, extras):
    plan = linux.build_plan(flags)
    assert (plan.mode, plan.extras, plan.why) == (mode, extras, "")
    assert plan.local


@pytest.mark.parametrize("flag", ["--with-hg=/a=b/hg", "--hg-wheel=x=y.whl", "--pyoxidized",
                                  "--with-chg=/c", "--with-rhg=/r"])
def test_each_own_hg_flag(flag):
    plan = linux.build_plan(["--pure", flag, "--with-hg=/other"])
    name = flag.split("=", 1)[0]
    assert (plan.mode, plan.extras, plan.why) == (None, (), f"{name} names the hg to test")
    assert not plan.local
