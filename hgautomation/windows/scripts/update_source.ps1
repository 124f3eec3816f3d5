# Working copy of C:\hgdev\src at the pushed revision, with no leftovers from
# an earlier build (purge --all also removes ignored files such as dist\).
# Parameters: $Hg, $Source, $Node.
& $Hg -R $Source update --clean $Node
Assert-LastExit "hg update $Node"
& $Hg -R $Source --config extensions.purge= purge --all
Assert-LastExit 'hg purge'
Write-Step "source at $Node"
