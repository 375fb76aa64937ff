-- Runs deploy/argocd/kmskey-health.lua against sample KmsKey objects, as Argo CD would.
-- Usage: lua5.4 tests/argocd/health_test.lua deploy/argocd/kmskey-health.lua
local script = assert(arg[1], "usage: health_test.lua PATH_TO_HEALTH_SCRIPT")
local chunk = assert(loadfile(script, "t", setmetatable({}, { __index = _G })))

local function health(sample)
  local env = setmetatable({ obj = sample }, { __index = _G })
  local fn = assert(loadfile(script, "t", env))
  return fn()
end

local function cond(kind, status, reason, message)
  return { type = kind, status = status, reason = reason, message = message }
end

local function kmskey(generation, observed, conditions, deleting)
  local meta = { name = "k", generation = generation }
  if deleting then meta.deletionTimestamp = "2026-11-28T00:00:00Z" end
  local status = nil
  if observed ~= nil or conditions ~= nil then
    status = { observedGeneration = observed, conditions = conditions }
  end
  return { metadata = meta, status = status }
end

local ready = {
  cond("Ready", "True", "Ready", "the key matches the spec"),
  cond("Reconciling", "False", "Ready", ""),
  cond("Stalled", "False", "Ready", ""),
}
local progressing = {
  cond("Ready", "False", "Throttled", "KMS throttled CreateAlias"),
  cond("Reconciling", "True", "Throttled", "KMS throttled CreateAlias"),
  cond("Stalled", "False", "Throttled", ""),
}
local stalled = {
  cond("Ready", "False", "AliasConflict", "alias/a already points at key k2"),
  cond("Reconciling", "False", "AliasConflict", ""),
  cond("Stalled", "True", "AliasConflict", "alias/a already points at key k2"),
}

local cases = {
  { "ready", kmskey(2, 2, ready), "Healthy", "matches the spec" },
  { "progressing", kmskey(2, 2, progressing), "Progressing", "Throttled" },
  { "stalled", kmskey(2, 2, stalled), "Degraded", "AliasConflict: alias/a already points at key k2" },
  { "being deleted", kmskey(2, 2, ready, true), "Progressing", "deletion" },
  { "not yet observed", kmskey(3, 2, ready), "Progressing", "generation 3" },
  { "no status at all", kmskey(1, nil, nil), "Progressing", "generation 1" },
}

local failed = 0
for _, case in ipairs(cases) do
  local name, sample, want_status, want_text = case[1], case[2], case[3], case[4]
  local hs = health(sample)
  local ok = hs.status == want_status and string.find(hs.message or "", want_text, 1, true) ~= nil
  if ok then
    print("ok   " .. name .. ": " .. hs.status .. " (" .. hs.message .. ")")
  else
    failed = failed + 1
    print("FAIL " .. name .. ": got " .. tostring(hs.status) .. " (" .. tostring(hs.message) .. "), want "
      .. want_status .. " containing '" .. want_text .. "'")
  end
end
print(string.format("argocd health: %d passed, %d failed", #cases - failed, failed))
assert(chunk ~= nil)
os.exit(failed == 0 and 0 or 1)
