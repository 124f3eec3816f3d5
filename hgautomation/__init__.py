"""hgautomation: build, test and release Mercurial on machines you do not have."""

__version__ = "0.1.0"
