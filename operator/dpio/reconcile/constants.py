"""What both reconcilers share: how soon they look again after a change."""

#: After changing vSphere, read again this soon to confirm the result.
CONFIRM_SECONDS = 2.0

#: A VM's device change concerns the policy of its host (which devices VMs hold, which may not
#: be disabled), but only its status: the policy's next plan reads the hosts anew whenever it
#: runs. So such changes queue the policy within this many seconds, a burst of them (a fleet of
#: VMs converging) coalesced into one run, rather than one run of a policy over every host per
#: VM (docs/benchmarks.md, finding 26).
VM_SETTLE_SECONDS = 3.0
