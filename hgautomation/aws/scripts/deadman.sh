#!/bin/sh
# hgautomation dead-man switch: the instance powers itself off after its maximum
# lifetime even if the machine that started it is gone. The instance was launched
# with InstanceInitiatedShutdownBehavior=terminate, so power-off means terminate.
shutdown -h +@MINUTES@ "hgautomation: maximum lifetime reached" \
    || (sleep @SECONDS@ && poweroff) >/dev/null 2>&1 &
