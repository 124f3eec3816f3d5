"""Real stand-in servers on loopback for the hgautomation test suite, and the shared helpers.

Each server module starts one kind of server (aws: moto, sshd, pypi: pypiserver) or builds
one fixture (hgsource: a Mercurial source repository); tests/conftest.py turns them into
pytest fixtures. cli runs the real CLI (the `cli` fixture); process stops and kills what
the tests start; net has loopback and waiting helpers; powershell reads generated scripts;
hgsource.hg is the one way tests run Mercurial; aws_driver is a program holding
temporary instances for the signal tests.
Test modules import helpers from here, never from each other.
"""
