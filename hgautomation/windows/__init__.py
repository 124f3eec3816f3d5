"""Windows hosts over OpenSSH + PowerShell: scripts, build recipes, artifact copy-back.

The Windows side of the remote-machine contract (docs/contract.rst) is spelled
out once, in :mod:`hgautomation.windows.recipes`.
"""
