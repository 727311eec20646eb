"""What both reconcilers share: how soon they look again after a change."""

#: After changing vSphere, read again this soon to confirm the result.
CONFIRM_SECONDS = 2.0
