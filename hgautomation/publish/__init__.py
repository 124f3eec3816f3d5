"""Publishing a Windows release: wheels to PyPI (twine), installers to mercurial-scm.org (SFTP).

``artifacts`` finds and checks the files, ``pypi`` and ``release_host`` send them;
each destination is checked before anything is sent anywhere.
"""
