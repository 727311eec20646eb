-- Argo CD health check for dpio.io/v1alpha1 HostPassthroughPolicy and VMDeviceAssignment.
-- One script for both kinds; install it as
--   resource.customizations.health.dpio.io_HostPassthroughPolicy
--   resource.customizations.health.dpio.io_VMDeviceAssignment
-- (see argocd-cm-patch.yaml and docs/observability.md).
--
-- kstatus rules first (docs/design.md, "Status contract"), then Ready's reason decides what
-- "not ready" means:
--   no status, or status.observedGeneration < metadata.generation -> Progressing
--   Stalled=True                                                   -> Degraded (needs a human)
--   Suspended=True (spec.suspend, or the operator's --dry-run)      -> Suspended
--   Ready=True                                                     -> Healthy
--   Reconciling=True                                               -> Progressing
--   Ready=False, reason in WAITING_FOR_YOU                         -> Suspended
--   Ready=False, any other reason                                  -> Progressing
--     (the operator sets Stalled=True for every state only a human can leave, so a Ready=False
--     without it waits for something that comes: docs/observability.md, "Who acts next")
--   Ready=Unknown or missing                                       -> Progressing
-- Written for Lua 5.1 (gopher-lua, what Argo CD runs): no goto, no integer division.

-- The spec asked for a human step and the operator is waiting for it, as it should: Argo CD's
-- Suspended ("paused, waiting for an external event"), not an error.
local WAITING_FOR_YOU = {
  PendingReboot = "a host must be rebooted (reboot.policy: Manual)",
  VMPoweredOn = "the VM must be powered off (powerPolicy: WaitForPowerOff)",
  PendingHostReboot = "the device's host must be rebooted first",
  DrainBlocked = "powered-on VMs must be moved or powered off by their owners",
  MaintenanceModeByOthers = "whoever put the host in maintenance mode must take it out",
  -- Ready's reason while calls are held back; the Suspended condition says the same.
  Suspended = "spec.suspend is true: nothing is written to vCenter",
  DryRun = "the operator runs with --dry-run: nothing is written to vCenter",
}

-- Nobody needs to act: the operator, or the policy this object depends on, gets there alone.
local ON_ITS_WAY = {
  RollingReboot = true,       -- the operator reboots the hosts, maxUnavailable at a time
  ClusterBudgetExhausted = true,  -- a slot in the host's cluster frees by itself
  OutsideRebootWindow = true,  -- the next reboot window opens by itself
  NotEnabled = true,          -- the HostPassthroughPolicy has not enabled the device yet
  AwaitingReconcile = true,   -- Ready=Unknown before the first observation
  Progressing = true,
  VCenterUnreachable = true,  -- retried with capped exponential backoff
}

local function condition(conditions, kind)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function said(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

local function health(obj)
  local generation = (obj.metadata or {}).generation
  local status = obj.status
  if status == nil then
    return "Progressing", "Waiting for the operator to report status"
  end
  local observed = status.observedGeneration
  if generation ~= nil and (observed == nil or observed < generation) then
    return "Progressing", "Waiting for the operator to observe generation " .. tostring(generation)
  end
  local conditions = status.conditions
  local stalled = condition(conditions, "Stalled")
  if stalled ~= nil and stalled.status == "True" then
    return "Degraded", said(stalled, stalled.reason or "Stalled")
  end
  -- spec.suspend: true (reason Suspended) or an operator in dry-run mode (reason DryRun): no
  -- vCenter write is made, as Flux's spec.suspend and Cluster API's paused; the message says
  -- what would be done.
  local suspended = condition(conditions, "Suspended")
  if suspended ~= nil and suspended.status == "True" then
    return "Suspended", said(suspended, suspended.reason or "Suspended")
  end
  local ready = condition(conditions, "Ready")
  if ready ~= nil and ready.status == "True" then
    if ready.observedGeneration ~= nil and generation ~= nil and ready.observedGeneration < generation then
      return "Progressing", "Waiting for the operator to observe generation " .. tostring(generation)
    end
    return "Healthy", said(ready, "All of the spec is in effect")
  end
  local reconciling = condition(conditions, "Reconciling")
  if reconciling ~= nil and reconciling.status == "True" then
    return "Progressing", said(reconciling, said(ready, "Reconciling"))
  end
  if ready == nil or ready.status ~= "False" then
    local why = "Waiting for the Ready condition"
    if ready ~= nil and ready.reason ~= nil then
      why = ready.reason
    end
    return "Progressing", said(ready, why)
  end
  local reason = ready.reason or ""
  local waiting = WAITING_FOR_YOU[reason]
  if waiting ~= nil then
    return "Suspended", said(ready, "Waiting: " .. waiting)
  end
  if ON_ITS_WAY[reason] then
    return "Progressing", said(ready, reason)
  end
  return "Progressing", said(ready, reason)
end

local hs = {}
hs.status, hs.message = health(obj)
return hs
