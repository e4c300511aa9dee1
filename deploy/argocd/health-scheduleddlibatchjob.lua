-- Argo CD health check for dli.dev/ScheduledDliBatchJob
-- (resource.customizations.health.dli.dev_ScheduledDliBatchJob). It reads the kstatus conditions
-- the operator keeps, so Argo CD, Flux and kstatus agree: Progressing while a run is active,
-- Degraded once the last run failed (or the schedule cannot be used), Suspended while
-- spec.suspend holds it, Healthy otherwise.
local hs = { status = "Progressing", message = "Waiting for the operator to pick up the schedule" }

local function condition(status, kind)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local status = obj.status
if status == nil then
  return hs
end

local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local stalled = condition(status, "Stalled")
local reconciling = condition(status, "Reconciling")
local ready = condition(status, "Ready")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.reason .. ": " .. stalled.message
elseif reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = reconciling.message
elseif obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "Suspended by spec.suspend"
elseif ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message
end
return hs
