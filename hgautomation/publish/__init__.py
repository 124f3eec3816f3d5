"""Publishing a Windows release: PyPI (wheels, via twine) and mercurial-scm.org (installers, via SFTP).

``artifacts`` finds and checks the files, ``pypi`` and ``release_host`` send them;
each destination is checked before anything is sent anywhere.
"""
