"""Real stand-in servers on loopback for the hgautomation test suite.

Each module starts one kind of server (moto, sshd, pypiserver) or builds one fixture
(a Mercurial source repository); tests/conftest.py turns them into pytest fixtures.
"""
