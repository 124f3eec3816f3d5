# hgautomation dead-man switch: shut down (which terminates the instance, see
# InstanceInitiatedShutdownBehavior) after the maximum lifetime.
shutdown.exe /s /f /t @SECONDS@ /c "hgautomation: maximum lifetime reached"
