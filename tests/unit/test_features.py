"""hgautomation.linux.features: reading `#require`, and what a host's gaps skip."""

from __future__ import annotations

from hgautomation.linux import features

TEST_T = """\
#require git no-windows # the comment is not a feature
  $ echo hi
  hi
#if svn
#require svn-bindings
  $ svn --version
#endif
#testcases a b
#require serve
"""


def test_parse_requires_reads_top_level_lines_only():
    assert features.parse_requires(TEST_T) == {"git", "no-windows", "serve"}


def test_parse_requires_of_a_test_without_any():
    assert features.parse_requires("  $ true\n") == set()


def test_requirements_of_a_checkout(tmp_path):
    (tmp_path / "test-a.t").write_text("#require git\n")
    (tmp_path / "test-b.t").write_text("  $ true\n")
    (tmp_path / "test-c.py").write_text("#require git\n")  # .py tests: not read
    (tmp_path / "helper.t").write_text("#require cvs\n")  # not a test-*.t
    assert features.test_requirements(tmp_path) == {"test-a.t": {"git"}, "test-b.t": set()}


def test_report_counts_skips_per_feature_and_in_all():
    requirements = {"test-git.t": {"git"}, "test-git-svn.t": {"git", "svn"},
                    "test-svn.t": {"svn"}, "test-plain.t": set(), "test-tla.t": {"tla"}}
    results = {"git": True, "svn": False, "tla": False, "p4": "error: boom"}
    report = features.build_report(results, requirements, "debian13")
    rows = {r.feature: r for r in report.rows}
    assert rows["git"].present and rows["git"].skipped_tests == 2
    assert (rows["svn"].present, rows["svn"].skipped_tests, rows["svn"].why) == (False, 2, "")
    assert rows["tla"].why == "not packaged for Debian 13"
    assert rows["p4"].why == "proprietary (Perforce): not packaged"
    assert [r.feature for r in report.missing] == ["p4", "svn", "tla"]
    assert (report.tests, report.skipped) == (5, 3)


def test_an_error_without_a_known_reason_is_the_reason():
    report = features.build_report({"cvs": "error: KeyError: 'X'"}, {}, "debian12")
    assert report.missing[0].why == "error: KeyError: 'X'"


def test_the_missing_feature_table_fits_100_columns():
    """check-host's table: feature, "tests skipped", reason (cut at WHY_WIDTH)."""
    reasons = {why for per_distro in features.WHY_MISSING.values() for why in per_distro.values()}
    assert max(map(len, reasons)) <= features.WHY_WIDTH
    widest_feature = max(len("missing feature"), *map(len, features.HOST_FEATURES))
    assert widest_feature + 2 + len("tests skipped") + 2 + features.WHY_WIDTH <= 100
