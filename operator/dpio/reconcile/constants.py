"""What both reconcilers share: their finalizer and how soon they look again after a change."""

FINALIZER = "dpio.io/finalizer"
#: After changing vSphere, read again this soon to confirm the result.
CONFIRM_SECONDS = 2.0
