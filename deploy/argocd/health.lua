-- Argo CD health check for dli.dev/DliBatchJob (resource.customizations.health.dli.dev_DliBatchJob).
-- A batch job is Healthy once it succeeded, Degraded once it failed or was cancelled, Suspended
-- while spec.suspend holds it, and Progressing until then (as Argo CD treats batch/v1 Job).
-- An unfinished job that waits for an admin or its author (policy refusal, missing Secret,
-- rejected credentials) is Degraded too: it carries kstatus's Stalled=True with the reason.
local hs = { status = "Progressing", message = "Waiting for the operator to pick up the job" }

local function describe(status, fallback)
  local text = status.message
  if text == nil or text == "" then
    text = fallback
  end
  if status.reason ~= nil and status.reason ~= "" then
    return status.reason .. ": " .. text
  end
  return text
end

local function true_condition(status, kind)
  if status.conditions == nil then
    return nil
  end
  for _, condition in ipairs(status.conditions) do
    if condition.type == kind and condition.status == "True" then
      return condition
    end
  end
  return nil
end

local function condition_true(status, kind)
  return true_condition(status, kind) ~= nil
end

local progressing = {
  Pending = "Waiting to be submitted to DLI",
  Submitting = "Submitting to DLI",
  Starting = "DLI is starting the job",
  Running = "Running in DLI",
  Recovering = "DLI job died; the operator is resubmitting it",
}

local status = obj.status
if status == nil then
  return hs
end

-- The operator has not yet acted on the latest spec (for example a new spec.suspend).
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local phase = status.phase
if phase == nil or phase == "" then
  -- No phase yet: fall back on the terminal conditions, as kubectl wait does.
  if condition_true(status, "Failed") then
    hs.status = "Degraded"
    hs.message = describe(status, "The job failed")
  elseif condition_true(status, "Complete") then
    hs.status = "Healthy"
    hs.message = describe(status, "The job succeeded")
  end
  return hs
end

local stalled = true_condition(status, "Stalled")
if progressing[phase] ~= nil and stalled ~= nil then
  hs.status = "Degraded"
  hs.message = (stalled.reason or "Stalled") .. ": " .. (stalled.message or phase)
elseif progressing[phase] ~= nil then
  hs.status = "Progressing"
  hs.message = describe(status, progressing[phase])
  if status.batchId ~= nil and status.batchId ~= "" then
    hs.message = hs.message .. " (batch " .. status.batchId .. ")"
  end
elseif phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = describe(status, "The job succeeded")
elseif phase == "Failed" then
  hs.status = "Degraded"
  hs.message = describe(status, "The job failed")
elseif phase == "Cancelled" then
  hs.status = "Degraded"
  hs.message = describe(status, "The job was cancelled before it finished")
elseif phase == "Suspended" then
  hs.status = "Suspended"
  hs.message = describe(status, "Suspended by spec.suspend")
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. tostring(phase)
end
return hs
